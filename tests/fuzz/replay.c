/* Fuzz driver for builds without libFuzzer (gcc, sanitizers, make check).
 * Feeds every corpus file named on the command line (files, or directories
 * read recursively) to LLVMFuzzerTestOneInput and prints TAP. Then, when
 * FUZZ_ITERATIONS > 0, it runs that many seeded random mutations of the
 * corpus (deterministic for a given FUZZ_SEED), as one more TAP result.
 *
 * Environment: FUZZ_ITERATIONS (default 0), FUZZ_SEED (default 1),
 * FUZZ_MAX_LEN (mutated input cap, default 4096), FUZZ_DICT (libFuzzer/AFL
 * dictionary whose tokens the mutator inserts), FUZZ_CRASH_DIR (where a
 * crashing mutated input is saved, default "."). The same file linked with
 * -fsanitize=fuzzer is not needed: libFuzzer brings its own main(). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));
/* Present in ASan/UBSan runtimes; lets us save the input before they
 * _exit() on an error report. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

struct replay_input {
	char *path;
	uint8_t *data;
	size_t len;
};

struct replay_list {
	struct replay_input *v;
	size_t n;
	size_t cap;
};

/* The mutated input being run, for the crash handlers. */
static const uint8_t *replay_cur;
static size_t replay_cur_len;
static char replay_crash_path[4096];

static void *replay_alloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		fprintf(stderr, "replay: out of memory\n");
		exit(99);
	}
	return p;
}

static void *replay_grow(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q) {
		fprintf(stderr, "replay: out of memory\n");
		exit(99);
	}
	return q;
}

static int replay_read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (!f)
		return -1;
	for (;;) {
		if (n == cap) {
			cap = cap ? cap * 2 : 4096;
			buf = replay_grow(buf, cap);
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		return -1;
	}
	fclose(f);
	*data = buf;
	*len = n;
	return 0;
}

static void replay_add(struct replay_list *l, const char *path)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		if (!l->v) {
			fprintf(stderr, "replay: out of memory\n");
			exit(99);
		}
	}
	l->v[l->n].path = strdup(path);
	l->v[l->n].data = NULL;
	l->v[l->n].len = 0;
	if (!l->v[l->n].path)
		exit(99);
	l->n++;
}

static int replay_cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add a file, or every file under a directory in name order. */
static int replay_collect(struct replay_list *l, const char *path)
{
	struct dirent *de;
	struct stat st;
	char **names = NULL;
	size_t n = 0, cap = 0, i;
	DIR *d;
	int r = 0;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		replay_add(l, path);
		return 0;
	}
	d = opendir(path);
	if (!d) {
		fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				exit(99);
		}
		names[n] = replay_alloc(strlen(path) + strlen(de->d_name) + 2);
		sprintf(names[n], "%s/%s", path, de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), replay_cmp_name);
	for (i = 0; i < n; i++) {
		if (replay_collect(l, names[i]) < 0)
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

/* Run one input from an exact-size heap copy, so ASan sees over-reads. */
static void replay_run(const uint8_t *data, size_t len)
{
	uint8_t *copy = replay_alloc(len);

	if (len)
		memcpy(copy, data, len);
	LLVMFuzzerTestOneInput(copy, len);
	free(copy);
}

static void replay_save_crash(void)
{
	int fd;

	if (!replay_cur || !replay_crash_path[0])
		return;
	fd = open(replay_crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd >= 0) {
		if (write(fd, replay_cur, replay_cur_len) < 0)
			replay_cur_len = 0;
		close(fd);
	}
	if (write(2, "# crashing input saved to ", 26) < 0 ||
	    write(2, replay_crash_path, strlen(replay_crash_path)) < 0 ||
	    write(2, "\n", 1) < 0)
		return;
	replay_cur = NULL;
}

static void replay_on_signal(int sig)
{
	replay_save_crash();
	signal(sig, SIG_DFL);
	raise(sig);
}

static uint64_t replay_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static size_t replay_below(uint64_t *s, size_t n)
{
	return n ? (size_t)(replay_rand(s) % n) : 0;
}

struct replay_dict {
	uint8_t **tok;
	size_t *len;
	size_t n;
};

/* Load a libFuzzer/AFL dictionary: lines name="value" with \\, \" and
 * \xHH escapes; # starts a comment. */
static void replay_dict_load(struct replay_dict *dict, const char *path)
{
	uint8_t *data = NULL, *tok;
	size_t len = 0, i, t;
	char *line, *save = NULL, *q;

	if (replay_read_file(path, &data, &len) < 0) {
		fprintf(stderr, "replay: cannot read dictionary %s\n", path);
		return;
	}
	data = realloc(data, len + 1);
	if (!data)
		exit(99);
	data[len] = '\0';
	for (line = strtok_r((char *)data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '#' || !(q = strchr(line, '"')))
			continue;
		tok = replay_alloc(strlen(q));
		for (i = 1, t = 0; q[i] && q[i] != '"'; i++) {
			if (q[i] == '\\' && q[i + 1] == 'x' &&
			    q[i + 2] && q[i + 3]) {
				char hex[3] = { q[i + 2], q[i + 3], 0 };

				tok[t++] = (uint8_t)strtoul(hex, NULL, 16);
				i += 3;
			} else if (q[i] == '\\' && q[i + 1]) {
				tok[t++] = (uint8_t)q[++i];
			} else {
				tok[t++] = (uint8_t)q[i];
			}
		}
		dict->tok = realloc(dict->tok, (dict->n + 1) *
				    sizeof(*dict->tok));
		dict->len = realloc(dict->len, (dict->n + 1) *
				    sizeof(*dict->len));
		if (!dict->tok || !dict->len)
			exit(99);
		dict->tok[dict->n] = tok;
		dict->len[dict->n] = t;
		dict->n++;
	}
	free(data);
}

/* Insert n bytes at pos, truncating at cap. */
static size_t replay_insert(uint8_t *buf, size_t len, size_t cap, size_t pos,
			    const uint8_t *src, size_t n)
{
	if (n > cap - len)
		n = cap - len;
	memmove(buf + pos + n, buf + pos, len - pos);
	memcpy(buf + pos, src, n);
	return len + n;
}

/* One random edit of buf[0..len) (capacity cap); the new length. */
static size_t replay_mutate(uint64_t *s, uint8_t *buf, size_t len, size_t cap,
			    const struct replay_list *l,
			    const struct replay_dict *dict)
{
	static const uint8_t interesting[] = {
		0x00, 0x01, 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xe2, 0xed, 0xef,
		0xf0, 0xf4, 0xff, '{', '}', '[', ']', ',', ':', '"', '\'',
		'\\', '/', '*', '\n', '\r', ' ', '0', '9', '.', '-', '+',
		'e', 'x', 'u',
	};
	const struct replay_input *other;
	uint8_t byte, tmp[4096];
	size_t pos = replay_below(s, len + 1), n, from;

	switch (replay_rand(s) % 9) {
	case 0:		/* flip a bit */
		if (len)
			buf[pos % len] ^= (uint8_t)(1u << replay_below(s, 8));
		return len;
	case 1:		/* overwrite a byte */
		if (len)
			buf[pos % len] = interesting[replay_below(s,
						     sizeof(interesting))];
		return len;
	case 2:		/* insert a byte */
		byte = replay_rand(s) & 1 ? (uint8_t)replay_rand(s) :
			interesting[replay_below(s, sizeof(interesting))];
		return replay_insert(buf, len, cap, pos, &byte, 1);
	case 3:		/* delete a range */
		if (pos >= len)
			return len;
		n = 1 + replay_below(s, (len - pos) / 4 + 1);
		if (n > len - pos)
			n = len - pos;
		memmove(buf + pos, buf + pos + n, len - pos - n);
		return len - n;
	case 4:		/* duplicate a range of itself */
		if (!len)
			return len;
		from = replay_below(s, len);
		n = 1 + replay_below(s, len - from);
		if (n > sizeof(tmp))
			n = sizeof(tmp);
		memcpy(tmp, buf + from, n);
		return replay_insert(buf, len, cap, pos, tmp, n);
	case 5:		/* insert a dictionary token */
	case 6:
		if (!dict->n)
			return len;
		n = replay_below(s, dict->n);
		return replay_insert(buf, len, cap, pos, dict->tok[n],
				     dict->len[n]);
	case 7:		/* splice in a piece of another input */
		other = &l->v[replay_below(s, l->n)];
		if (!other->len)
			return len;
		from = replay_below(s, other->len);
		n = 1 + replay_below(s, other->len - from);
		return replay_insert(buf, len, cap, pos, other->data + from,
				     n);
	default:	/* truncate */
		return pos < len ? pos : len;
	}
}

static int replay_mutations(const struct replay_list *l,
			    const struct replay_dict *dict,
			    unsigned long iterations, uint64_t seed,
			    size_t max_len, const char *crash_dir)
{
	const struct replay_input *base;
	uint64_t s;
	uint8_t *buf = replay_alloc(max_len);
	unsigned long i;
	size_t len, k, edits;

	for (i = 0; i < iterations; i++) {
		/* each iteration has its own stream: reproducible alone */
		s = seed * 0x100000001b3ull ^ (uint64_t)i;
		replay_rand(&s);
		base = &l->v[replay_below(&s, l->n)];
		len = base->len < max_len ? base->len : max_len;
		if (len)
			memcpy(buf, base->data, len);
		/* mostly few edits: more inputs stay close to valid */
		edits = 1 + replay_below(&s, replay_below(&s, 8) + 1);
		for (k = 0; k < edits; k++)
			len = replay_mutate(&s, buf, len, max_len, l, dict);
		snprintf(replay_crash_path, sizeof(replay_crash_path),
			 "%s/crash-seed%llu-iter%lu", crash_dir,
			 (unsigned long long)seed, i);
		replay_cur = buf;
		replay_cur_len = len;
		replay_run(buf, len);
	}
	replay_cur = NULL;
	free(buf);
	return 0;
}

static unsigned long long replay_env_num(const char *name,
					 unsigned long long def)
{
	const char *v = getenv(name);
	char *end;
	unsigned long long n;

	if (!v || !*v)
		return def;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end) {
		fprintf(stderr, "replay: bad %s=%s\n", name, v);
		exit(99);
	}
	return n;
}

int main(int argc, char **argv)
{
	struct replay_list l = { 0 };
	struct replay_dict dict = { 0 };
	unsigned long iterations;
	uint64_t seed;
	size_t max_len, i;
	const char *crash_dir, *dict_path;
	int a, status = 0;

	if (LLVMFuzzerInitialize)
		LLVMFuzzerInitialize(&argc, &argv);
	iterations = (unsigned long)replay_env_num("FUZZ_ITERATIONS", 0);
	seed = replay_env_num("FUZZ_SEED", 1);
	max_len = (size_t)replay_env_num("FUZZ_MAX_LEN", 4096);
	if (max_len < 16)
		max_len = 16;
	crash_dir = getenv("FUZZ_CRASH_DIR");
	if (!crash_dir || !*crash_dir)
		crash_dir = ".";
	dict_path = getenv("FUZZ_DICT");
	if (dict_path && *dict_path)
		replay_dict_load(&dict, dict_path);

	for (a = 1; a < argc; a++) {
		if (argv[a][0] == '-')	/* libFuzzer flags: ignored */
			continue;
		if (replay_collect(&l, argv[a]) < 0)
			status = 1;
	}
	if (!l.n) {
		printf("Bail out! no corpus inputs (usage: %s DIR|FILE...)\n",
		       argv[0]);
		return 1;
	}

	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(replay_save_crash);
	signal(SIGSEGV, replay_on_signal);
	signal(SIGABRT, replay_on_signal);
	signal(SIGBUS, replay_on_signal);
	signal(SIGFPE, replay_on_signal);
	signal(SIGILL, replay_on_signal);

	printf("1..%zu\n", l.n + (iterations ? 1 : 0));
	fflush(stdout);
	for (i = 0; i < l.n; i++) {
		if (replay_read_file(l.v[i].path, &l.v[i].data,
				     &l.v[i].len) < 0) {
			printf("not ok %zu - %s: cannot read\n", i + 1,
			       l.v[i].path);
			status = 1;
			continue;
		}
		replay_run(l.v[i].data, l.v[i].len);
		printf("ok %zu - %s\n", i + 1, l.v[i].path);
		fflush(stdout);
	}
	if (iterations) {
		replay_mutations(&l, &dict, iterations, seed, max_len,
				 crash_dir);
		printf("ok %zu - %lu mutations (FUZZ_SEED=%llu)\n", l.n + 1,
		       iterations, (unsigned long long)seed);
	}

	for (i = 0; i < l.n; i++) {
		free(l.v[i].path);
		free(l.v[i].data);
	}
	free(l.v);
	for (i = 0; i < dict.n; i++)
		free(dict.tok[i]);
	free(dict.tok);
	free(dict.len);
	return status;
}
