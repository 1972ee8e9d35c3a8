/* IRC wire text: the line parser (RFC 1459/2812 with IRCv3 tags), inbound
 * sanitising (colour and control codes, invalid UTF-8), the Markdown to
 * plain text rendering of answers and the splitter that makes every
 * outbound line fit 512 bytes including the prefix the server adds.
 * Pure functions, no I/O: unit tested and fuzzed. */
#pragma once

#include <stddef.h>

/* Hard bounds on input from the server. */
#define IRC_LINE_BUF 8192	/* a line without CRLF past this is dropped */
#define IRC_LINE_MAX 512	/* RFC line size, CRLF included */
#define IRC_PARAMS_MAX 15

struct irc_msg {
	const char *tags;	/* raw IRCv3 tags (without '@') or NULL */
	const char *prefix;	/* nick!user@host or a server name, or NULL */
	const char *command;	/* upper-case letters or 3 digits */
	int nparams;
	const char *params[IRC_PARAMS_MAX];
};

/* Parse one line (without CR LF) in place. 0, or -1 for a malformed line
 * (empty, no command, NUL or CR/LF inside, bad command token). */
int irc_line_parse(char *line, struct irc_msg *m);
/* The nick of a prefix "nick!user@host" into out (at most cap-1 bytes);
 * returns its length (0 when the prefix is NULL or empty). */
size_t irc_line_nick(const char *prefix, char *out, size_t cap);
/* Strip mIRC colour (\x03NN,NN, \x04RRGGBB) and formatting codes and the
 * other C0 controls (tab becomes a space) in place; invalid UTF-8 bytes
 * become '?'. Returns the new length. */
size_t irc_line_sanitize(char *s);
/* 1 if s is valid UTF-8 of n bytes. */
int irc_line_utf8_valid(const char *s, size_t n);
/* ASCII case-insensitive compare with the RFC 1459 mapping ([]\~ are the
 * lower case of {}|^). */
int irc_line_casecmp(const char *a, const char *b);
/* RFC 1459 lower case copy (new string). */
char *irc_line_lower(const char *s);
/* 1 if the target names a channel (#, &, +, !). */
int irc_line_is_channel(const char *target);

/* Markdown to plain text: emphasis markers, inline code ticks, fences
 * and heading marks removed, [text](url) becomes "text (url)", code
 * contents and link destinations kept. New string. */
char *irc_line_markdown(const char *md);
/* Split text into lines of at most max bytes each: at newlines, else at
 * the last space before the limit, else at a UTF-8 character boundary.
 * Empty lines are skipped. *out: NULL-terminated vector of new strings
 * (free with irc_line_strv_free). Returns the count. max >= 8. */
size_t irc_line_split(const char *text, size_t max, char ***out);
void irc_line_strv_free(char **v);
/* The payload bytes left for PRIVMSG text to target when the server
 * relays our line with the prefix ":nick!user@host ". */
size_t irc_line_budget(const char *nick, size_t userhost_len,
		       const char *command, const char *target);
