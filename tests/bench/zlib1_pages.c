/*
 * The zlib side of save-bench.sh's deflate comparison: compresses every
 * whole 4 KiB page of a file into its own zlib stream with compress2 at
 * level 1 (what makedumpfile -c calls per page) and prints the total size
 * (a page that does not shrink counts as 4096: stored raw) and the time.
 * Built for arm64 against the Debian arm64 libz.so.1 and run under
 * qemu-aarch64-static, like vmcore-tools' `zlib_pages` example on the same
 * file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* From zlib.h (zlib1g-dev is not needed for one prototype). */
int compress2(unsigned char *dest, unsigned long *dest_len, const unsigned char *source,
	      unsigned long source_len, int level);

int main(int argc, char **argv)
{
	/* compressBound(4096) is 4109. */
	static unsigned char out[8192];
	unsigned long total = 0, pages = 0;
	struct timespec a, b;
	unsigned char *buf;
	long n, p;
	FILE *f;

	if (argc != 2) {
		fprintf(stderr, "usage: zlib1_pages FILE\n");
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
		if (compress2(out, &len, buf + p, 4096, 1) != 0) {
			fprintf(stderr, "compress2 failed at offset %ld\n", p);
			return 1;
		}
		total += len < 4096 ? len : 4096;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	printf("zlib compress2 level 1: %lu pages, %lu bytes, %.3f s\n", pages, total,
	       (b.tv_sec - a.tv_sec) + (b.tv_nsec - a.tv_nsec) / 1e9);
	return 0;
}
