/*
 * The C libraries' side of save-bench.sh's encoder comparison: compresses
 * every whole 4 KiB page of a file as makedumpfile does per page, with
 * liblzo2's lzo1x_1_compress (makedumpfile -l) or zlib's compress2 at
 * level 1 (makedumpfile -c), and prints the total size (a page that does
 * not shrink counts as 4096: stored raw) and the time. Built for arm64
 * against Debian's arm64 liblzo2.so.2 and libz.so.1 and run under
 * qemu-aarch64-static, like vmcore-tools' `encode_pages` example on the
 * same file.
 *
 *   encode_pages lzo|zlib FILE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* From lzo1x.h and zlib.h (liblzo2-dev and zlib1g-dev are not needed for
 * two prototypes). */
int lzo1x_1_compress(const unsigned char *src, unsigned long src_len,
		     unsigned char *dst, unsigned long *dst_len, void *wrkmem);
int compress2(unsigned char *dest, unsigned long *dest_len, const unsigned char *source,
	      unsigned long source_len, int level);

int main(int argc, char **argv)
{
	static unsigned char work[1 << 17] __attribute__((aligned(16)));
	/* Above both worst cases: lzo 4096 + 4096/16 + 67, zlib 4109. */
	static unsigned char out[8192];
	unsigned long total = 0, pages = 0;
	struct timespec a, b;
	unsigned char *buf;
	int lzo;
	long n, p;
	FILE *f;

	if (argc != 3 || (strcmp(argv[1], "lzo") && strcmp(argv[1], "zlib"))) {
		fprintf(stderr, "usage: encode_pages lzo|zlib FILE\n");
		return 2;
	}
	lzo = !strcmp(argv[1], "lzo");
	f = fopen(argv[2], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		perror(argv[2]);
		return 1;
	}
	buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, f) != (size_t)n) {
		perror(argv[2]);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (p = 0; p + 4096 <= n; p += 4096, pages++) {
		unsigned long len = sizeof(out);
		int rc = lzo ? lzo1x_1_compress(buf + p, 4096, out, &len, work)
			     : compress2(out, &len, buf + p, 4096, 1);
		if (rc != 0) {
			fprintf(stderr, "%s failed at offset %ld\n", argv[1], p);
			return 1;
		}
		total += len < 4096 ? len : 4096;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("%s: %lu pages, %lu bytes, %.3f s\n",
	       lzo ? "liblzo2 lzo1x_1" : "zlib compress2 level 1", pages, total,
	       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
