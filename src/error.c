/* error.c: tk_strerror() and tk_err_name(), generated from TK_ERRNO_MAP. */
#include <string.h>

#include "tcpkit.h"

const char *
tk_version(void)
{
	return TK_VERSION_STRING;
}

const char *
tk_strerror(int err)
{
	const char *s;

	switch (err) {
#define TK__ERR_TEXT(name, value, text)                                        \
	case TK_##name:                                                        \
		return text;
		TK_ERRNO_MAP(TK__ERR_TEXT)
#undef TK__ERR_TEXT
	case 0:
		return "success";
	}
	/* glibc's table of descriptions: static, thread-safe. */
	s = err < 0 ? strerrordesc_np(-err) : NULL;
	return s != NULL ? s : "unknown error";
}

const char *
tk_err_name(int err)
{
	const char *s;

	switch (err) {
#define TK__ERR_NAME(name, value, text)                                        \
	case TK_##name:                                                        \
		return #name;
		TK_ERRNO_MAP(TK__ERR_NAME)
#undef TK__ERR_NAME
	case 0:
		return "OK";
	}
	s = err < 0 ? strerrorname_np(-err) : NULL;
	return s != NULL ? s : "EUNKNOWN";
}
