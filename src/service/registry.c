/* registry.c: the table of built-in services, found by name. */
#include <string.h>

#include "tcpkit.h"

static const struct tk_service *const services[] = {
	&tk_service_echo,  &tk_service_discard, &tk_service_welcome,
	&tk_service_basic, &tk_service_line,	&tk_service_broker,
	&tk_service_chat,  &tk_service_socks5,
};

const struct tk_service *
tk_service_find(const char *name)
{
	for (size_t i = 0; i < sizeof(services) / sizeof(services[0]); i++)
		if (strcmp(services[i]->name, name) == 0)
			return services[i];
	return NULL;
}
