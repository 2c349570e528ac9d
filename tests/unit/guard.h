/* guard.h: test inputs that end just before an inaccessible page. */
#ifndef TK_TEST_GUARD_H
#define TK_TEST_GUARD_H

#include <criterion/criterion.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/*
 * Input is placed so that its last byte sits just before a PROT_NONE page:
 * a parser that reads one byte too far dies of SIGSEGV, sanitizer or not.
 */
struct guard {
	char *base;
	size_t size;
};

static inline void
guard_init(struct guard *g, size_t n)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);

	g->size = (n + page - 1) / page * page + page;
	g->base = mmap(NULL, g->size + page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(g->base != MAP_FAILED);
	cr_assert(mprotect(g->base + g->size, page, PROT_NONE) == 0);
}

static inline const char *
guard_put(struct guard *g, const void *p, size_t n)
{
	char *d;

	cr_assert(n <= g->size);
	d = g->base + g->size - n;
	if (n > 0)
		memmove(d, p, n);
	return d;
}

static inline void
guard_free(struct guard *g)
{
	munmap(g->base, g->size + (size_t)sysconf(_SC_PAGESIZE));
}

#endif /* TK_TEST_GUARD_H */
