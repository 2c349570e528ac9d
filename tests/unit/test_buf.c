/* test_buf.c: bounded byte buffers: limits, reserve/commit, compaction. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

/*
 * One timeout for every test: Criterion 2.4 leaks in its runner when tests
 * running in parallel have different timeouts.
 */
TestSuite(buf, .timeout = 30);

static void
expect_content(const struct tk_buf *b, const char *p, size_t n)
{
	cr_assert_eq(tk_buf_len(b), n, "len %zu, expected %zu", tk_buf_len(b),
		     n);
	if (n > 0)
		cr_assert(memcmp(tk_buf_peek(b), p, n) == 0, "content differs");
	cr_assert_leq(b->off + b->len, b->cap);
}

Test(buf, starts_empty_without_storage)
{
	struct tk_buf b;

	tk_buf_init(&b, 100);
	cr_assert_null(b.data);
	cr_assert_null(tk_buf_peek(&b));
	cr_assert_eq(tk_buf_len(&b), 0);
	cr_assert_eq(tk_buf_room(&b), 100);
	cr_assert_eq(tk_buf_append(&b, "x", 0), 0);
	cr_assert_null(b.data, "an empty append allocated");
	tk_buf_trim(&b);
	tk_buf_free(&b);
	tk_buf_free(&b); /* twice: harmless */
}

Test(buf, limit_is_exact_and_refusal_appends_nothing)
{
	struct tk_buf b;
	char data[64];

	t_fill(data, sizeof(data), 0, 1);
	tk_buf_init(&b, 50);
	cr_assert_eq(tk_buf_append(&b, data, 30), 0);
	cr_assert_eq(tk_buf_append(&b, data + 30, 21), -ENOBUFS);
	expect_content(&b, data, 30);
	cr_assert_eq(tk_buf_append(&b, data + 30, 20), 0);
	expect_content(&b, data, 50);
	cr_assert_eq(tk_buf_room(&b), 0);
	cr_assert_eq(tk_buf_append(&b, data, 1), -ENOBUFS);
	expect_content(&b, data, 50);
	/* Room comes back as content is consumed. */
	tk_buf_consume(&b, 10);
	cr_assert_eq(tk_buf_room(&b), 10);
	cr_assert_eq(tk_buf_append(&b, data + 50, 11), -ENOBUFS);
	cr_assert_eq(tk_buf_append(&b, data + 50, 10), 0);
	expect_content(&b, data + 10, 50);
	tk_buf_free(&b);
}

Test(buf, zero_limit_refuses_everything)
{
	struct tk_buf b;
	int err = 0;

	tk_buf_init(&b, 0);
	cr_assert_eq(tk_buf_append(&b, "a", 1), -ENOBUFS);
	cr_assert_null(tk_buf_reserve(&b, 1, &err));
	cr_assert_eq(err, -ENOBUFS);
	cr_assert_null(b.data);
	tk_buf_free(&b);
}

Test(buf, reserve_then_commit)
{
	struct tk_buf b;
	int err = 0;
	char *p;

	tk_buf_init(&b, 1000);
	p = tk_buf_reserve(&b, 600, &err);
	cr_assert_not_null(p);
	cr_assert_eq(tk_buf_len(&b), 0, "reserve alone adds no content");
	cr_assert_geq(b.cap, 600);
	memcpy(p, "hello, world", 12);
	tk_buf_commit(&b, 5); /* less than reserved */
	expect_content(&b, "hello", 5);
	p = tk_buf_reserve(&b, 995, &err);
	cr_assert_not_null(p);
	cr_assert_eq(p, tk_buf_peek(&b) + 5, "room starts after the content");
	memset(p, '!', 995);
	tk_buf_commit(&b, 995);
	cr_assert_eq(tk_buf_len(&b), 1000);
	cr_assert(memcmp(tk_buf_peek(&b), "hello!!!", 8) == 0);
	/* Full: even one byte is refused, with the reason. */
	err = 0;
	cr_assert_null(tk_buf_reserve(&b, 1, &err));
	cr_assert_eq(err, -ENOBUFS);
	cr_assert_eq(tk_buf_len(&b), 1000);
	tk_buf_free(&b);
}

Test(buf, reserve_zero_on_empty_buffer)
{
	struct tk_buf b;
	int err = 0;

	/* No error means a place to write (of 0 bytes), never NULL. */
	tk_buf_init(&b, 10);
	cr_assert_not_null(tk_buf_reserve(&b, 0, &err));
	cr_assert_eq(err, 0);
	tk_buf_commit(&b, 0);
	cr_assert_eq(tk_buf_len(&b), 0);
	tk_buf_free(&b);
}

Test(buf, consume_partial_and_all)
{
	struct tk_buf b;

	tk_buf_init(&b, 100);
	cr_assert_eq(tk_buf_append(&b, "abcdefghij", 10), 0);
	tk_buf_consume(&b, 3);
	expect_content(&b, "defghij", 7);
	tk_buf_consume(&b, 0);
	expect_content(&b, "defghij", 7);
	tk_buf_consume(&b, 7);
	cr_assert_eq(tk_buf_len(&b), 0);
	cr_assert_eq(b.off, 0, "an emptied buffer starts over at the front");
	cr_assert_eq(tk_buf_append(&b, "xyz", 3), 0);
	expect_content(&b, "xyz", 3);
	tk_buf_free(&b);
}

Test(buf, compaction_keeps_content_and_storage)
{
	struct tk_buf b;
	char data[8192];
	char *store;
	size_t cap;

	t_fill(data, sizeof(data), 0, 2);
	tk_buf_init(&b, 1u << 20);
	cr_assert_eq(tk_buf_append(&b, data, 4000), 0);
	store = b.data;
	cap = b.cap;
	tk_buf_consume(&b, 3900); /* 100 left, near the end of storage */
	cr_assert_gt(b.off + b.len + 3000, cap,
		     "the test needs the tail to be too short");
	cr_assert_eq(tk_buf_append(&b, data + 4000, 3000), 0);
	/* Slid to the front of the same storage, not reallocated. */
	cr_assert_eq(b.data, store);
	cr_assert_eq(b.cap, cap);
	cr_assert_eq(b.off, 0);
	expect_content(&b, data + 3900, 3100);
	tk_buf_free(&b);
}

Test(buf, trim_frees_only_when_empty)
{
	struct tk_buf b;

	tk_buf_init(&b, 100);
	cr_assert_eq(tk_buf_append(&b, "abc", 3), 0);
	tk_buf_trim(&b);
	cr_assert_not_null(b.data, "trim freed a buffer with content");
	expect_content(&b, "abc", 3);
	tk_buf_consume(&b, 3);
	tk_buf_trim(&b);
	cr_assert_null(b.data);
	cr_assert_eq(b.cap, 0);
	cr_assert_eq(tk_buf_room(&b), 100, "the limit survives a trim");
	/* Usable again. */
	cr_assert_eq(tk_buf_append(&b, "de", 2), 0);
	expect_content(&b, "de", 2);
	tk_buf_free(&b);
	cr_assert_null(b.data);
	cr_assert_eq(tk_buf_len(&b), 0);
	cr_assert_eq(tk_buf_append(&b, "f", 1), 0, "usable after free");
	expect_content(&b, "f", 1);
	tk_buf_free(&b);
}

Test(buf, grows_up_to_max_and_no_further)
{
	struct tk_buf b;
	const size_t max = 100000;
	char *data = malloc(max + 1);

	t_fill(data, max + 1, 0, 3);
	tk_buf_init(&b, max);
	for (size_t n = 0; n < max;) {
		size_t k = n + 777 <= max ? 777 : max - n;

		cr_assert_eq(tk_buf_append(&b, data + n, k), 0, "at %zu", n);
		n += k;
		cr_assert_leq(b.cap, max, "storage %zu beyond the limit",
			      b.cap);
		expect_content(&b, data, n);
	}
	cr_assert_eq(b.cap, max, "a full buffer holds exactly max");
	cr_assert_eq(tk_buf_append(&b, data + max, 1), -ENOBUFS);
	expect_content(&b, data, max);
	tk_buf_free(&b);
	free(data);
}

Test(buf, one_big_append)
{
	struct tk_buf b;
	const size_t n = 3u << 20;
	char *data = malloc(n);

	t_fill(data, n, 0, 4);
	tk_buf_init(&b, n);
	cr_assert_eq(tk_buf_append(&b, data, n), 0);
	expect_content(&b, data, n);
	cr_assert_eq(tk_buf_append(&b, data, 1), -ENOBUFS);
	tk_buf_free(&b);
	free(data);
}

/* Random operations against a plain array as the model. */
Test(buf, random_operations_match_a_model)
{
	const size_t max = 50000;
	char *model = malloc(max), *src = malloc(max);
	size_t mlen = 0, stream = 0;
	struct tk_buf b;

	srand(4242);
	tk_buf_init(&b, max);
	for (int round = 0; round < 20000; round++) {
		int op = rand() % 4;
		size_t n = (size_t)rand() % (round % 50 == 0 ? max : 3000);
		int err = 0;
		char *p;

		t_fill(src, n, stream, 5);
		switch (op) {
		case 0:
			if (n > max - mlen) {
				cr_assert_eq(tk_buf_append(&b, src, n),
					     -ENOBUFS);
				break;
			}
			cr_assert_eq(tk_buf_append(&b, src, n), 0);
			memcpy(model + mlen, src, n);
			mlen += n;
			stream += n;
			break;
		case 1:
			p = tk_buf_reserve(&b, n, &err);
			if (n > max - mlen) {
				cr_assert_null(p);
				cr_assert_eq(err, -ENOBUFS);
				break;
			}
			cr_assert_not_null(p);
			memcpy(p, src, n);
			/* Commit part of it; the rest is scratch. */
			tk_buf_commit(&b, n / 2);
			memcpy(model + mlen, src, n / 2);
			mlen += n / 2;
			stream += n / 2;
			break;
		case 2:
			if (n > mlen)
				n = mlen;
			tk_buf_consume(&b, n);
			memmove(model, model + n, mlen - n);
			mlen -= n;
			break;
		default:
			tk_buf_trim(&b);
			if (mlen == 0)
				cr_assert_null(b.data);
			break;
		}
		expect_content(&b, model, mlen);
		cr_assert_leq(b.cap, max < 4096 ? 4096 : max);
	}
	tk_buf_free(&b);
	free(model);
	free(src);
}
