/* Fuzz target for the IRC line handling: the input is split at LF like
 * the adapter's reader, each line is parsed (and must yield sane fields),
 * its text sanitised (the result must be valid UTF-8 without controls),
 * rendered from Markdown and split to 512-byte lines (each within the
 * budget and valid UTF-8 when its input was). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel/irc-line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_ircline_one(char *line)
{
	struct irc_msg m;
	char *copy = strdup(line), *md, **v = NULL;
	size_t n, i, budget = 200 + strlen(line) % 300;

	if (irc_line_parse(copy, &m) == 0) {
		if (!m.command || !*m.command || m.nparams < 0 ||
		    m.nparams > IRC_PARAMS_MAX)
			abort();
		for (i = 0; i < (size_t)m.nparams; i++)
			if (!m.params[i] || strpbrk(m.params[i], "\r\n"))
				abort();
	}
	free(copy);
	copy = strdup(line);
	n = irc_line_sanitize(copy);
	if (n != strlen(copy) || !irc_line_utf8_valid(copy, n))
		abort();
	for (i = 0; i < n; i++)
		if ((unsigned char)copy[i] < 0x20)
			abort();
	md = irc_line_markdown(copy);
	n = irc_line_split(md, budget, &v);
	for (i = 0; i < n; i++)
		if (strlen(v[i]) > budget || strchr(v[i], '\n') ||
		    !irc_line_utf8_valid(v[i], strlen(v[i])))
			abort();
	if (v[n])
		abort();
	irc_line_strv_free(v);
	free(md);
	free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1), *p, *nl;

	memcpy(buf, data, size);
	buf[size] = 0;
	/* a NUL ends the text the way the reader's C string does */
	for (p = buf; p && *p; p = nl ? nl + 1 : NULL) {
		nl = strchr(p, '\n');
		if (nl)
			*nl = 0;
		fuzz_ircline_one(p);
	}
	free(buf);
	return 0;
}
