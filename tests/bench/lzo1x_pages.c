/*
 * The liblzo2 side of save-bench.sh's encoder comparison: compresses every
 * whole 4 KiB page of a file with lzo1x_1_compress (what makedumpfile -l
 * calls per page) and prints the total size (a page that does not shrink
 * counts as 4096: stored raw) and the time. Built for arm64 against the
 * Debian arm64 liblzo2.so.2 and run under qemu-aarch64-static, like
 * vmcore-tools' `lzo_pages` example on the same file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* From lzo1x.h (liblzo2-dev is not needed for two prototypes). */
int lzo1x_1_compress(const unsigned char *src, unsigned long src_len,
		     unsigned char *dst, unsigned long *dst_len, void *wrkmem);

int main(int argc, char **argv)
{
	static unsigned char work[1 << 17] __attribute__((aligned(16)));
	static unsigned char out[4096 + 4096 / 16 + 64 + 3];
	unsigned long total = 0, pages = 0;
	struct timespec a, b;
	unsigned char *buf;
	long n, p;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: lzo1x_pages FILE\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (!f || fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
		perror(argv[1]);
		return 1;
	}
	buf = malloc(n ? n : 1);
	if (!buf || fread(buf, 1, n, f) != (size_t)n) {
		perror(argv[1]);
		return 1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (p = 0; p + 4096 <= n; p += 4096, pages++) {
		unsigned long len = sizeof(out);
		if (lzo1x_1_compress(buf + p, 4096, out, &len, work) != 0) {
			fprintf(stderr, "lzo1x_1_compress failed at offset %ld\n", p);
			return 1;
		}
		total += len < 4096 ? len : 4096;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("liblzo2 lzo1x_1: %lu pages, %lu bytes, %.3f s\n", pages, total,
	       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
