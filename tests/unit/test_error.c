/* test_error.c: the error map: codes, descriptions and names stay in step. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "tcpkit.h"

Test(error, every_tk_code_has_text_and_name)
{
#define CHECK(name, value, class, text)                                        \
	cr_expect_str_eq(tk_strerror(TK_##name), text);                        \
	cr_expect_str_eq(tk_err_name(TK_##name), #name);                       \
	cr_expect_lt(TK_##name, -3000);                                        \
	cr_expect_eq(tk_err_class(TK_##name), TK_CLASS_##class);
	TK_ERRNO_MAP(CHECK)
#undef CHECK
}

Test(error, codes_are_distinct_and_clear_of_errno)
{
	static const int codes[] = {
#define LIST(name, value, class, text) TK_##name,
		TK_ERRNO_MAP(LIST)
#undef LIST
	};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		/* errno values stay far below 3000 on Linux. */
		cr_expect_lt(codes[i], -3000);
		for (size_t j = i + 1; j < n; j++)
			cr_expect_neq(codes[i], codes[j]);
	}
}

Test(error, system_errors_come_from_errno)
{
	cr_expect_str_eq(tk_strerror(-ECONNREFUSED), "Connection refused");
	cr_expect_str_eq(tk_err_name(-ECONNREFUSED), "ECONNREFUSED");
	cr_expect_str_eq(tk_strerror(-EADDRINUSE), "Address already in use");
	cr_expect_str_eq(tk_strerror(0), "success");
	cr_expect_str_eq(tk_err_name(0), "OK");
}

Test(error, unknown_codes_still_give_text)
{
	cr_expect_str_eq(tk_strerror(-99999), "unknown error");
	cr_expect_str_eq(tk_err_name(-99999), "EUNKNOWN");
	cr_expect_str_eq(tk_strerror(12345), "unknown error");
}

/* The class a program maps to its exit status, for system errors too. */
Test(error, classes)
{
	cr_expect_eq(tk_err_class(0), TK_CLASS_NONE);
	cr_expect_eq(tk_err_class(TK_ENOHOST), TK_CLASS_RESOLVE);
	cr_expect_eq(tk_err_class(-ECONNREFUSED), TK_CLASS_REFUSED);
	cr_expect_eq(tk_err_class(-ECONNRESET), TK_CLASS_REFUSED);
	cr_expect_eq(tk_err_class(-EHOSTUNREACH), TK_CLASS_REFUSED);
	cr_expect_eq(tk_err_class(-ETIMEDOUT), TK_CLASS_TIMEOUT);
	cr_expect_eq(tk_err_class(TK_EIDLE), TK_CLASS_TIMEOUT);
	cr_expect_eq(tk_err_class(TK_ETLSNAME), TK_CLASS_TLS);
	cr_expect_eq(tk_err_class(TK_ETRUNCATED), TK_CLASS_PROTOCOL);
	cr_expect_eq(tk_err_class(TK_EBADURL), TK_CLASS_USAGE);
	cr_expect_eq(tk_err_class(-EIO), TK_CLASS_IO);
	cr_expect_eq(tk_err_class(-99999), TK_CLASS_IO);
}

Test(error, version)
{
	cr_expect_str_eq(tk_version(), TK_VERSION_STRING);
}
