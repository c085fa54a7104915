/* A main() for the libFuzzer harnesses that replays files through
 * LLVMFuzzerTestOneInput without libFuzzer, so `make check` (gcc, and the
 * ASan build) runs every committed corpus.  Usage: fuzz_X FILE|DIR...
 * Prints one "ok" line per harness run; a crash or abort is the failure. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static long run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long n;

	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 ||
	    fseek(f, 0, SEEK_SET) != 0) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	buf = malloc((size_t)n + 1);
	if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
		fprintf(stderr, "cannot read %s\n", path);
		exit(2);
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 1;
}

static long run_path(const char *path)
{
	struct stat sb;
	struct dirent *de;
	DIR *d;
	long count = 0;

	if (stat(path, &sb) != 0) {
		fprintf(stderr, "no such corpus %s\n", path);
		exit(2);
	}
	if (!S_ISDIR(sb.st_mode))
		return run_file(path);
	d = opendir(path);
	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL) {
		char p[4096];

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", path, de->d_name);
		count += run_path(p);
	}
	closedir(d);
	return count;
}

int main(int argc, char **argv)
{
	long n = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < argc; i++)
		n += run_path(argv[i]);
	/* Also the empty input, which every parser must survive. */
	LLVMFuzzerTestOneInput((const uint8_t *)"", 0);
	printf("ok - %s replayed %ld corpus inputs\n", argv[0], n);
	return 0;
}
