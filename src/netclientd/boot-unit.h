/* Whether netclientd starts at boot follows whether the host is joined (boot-unit.c). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#define PTR_TO_BOOL(p) ((bool)(uintptr_t)(p))
#define BOOL_TO_PTR(b) ((void *)(uintptr_t)(b))

/* Asks systemd (asynchronously) to enable or disable netclientd.service, when netclientd runs as
 * that service; a refusal is logged with the command that does it by hand. */
void boot_unit_set(sd_bus *bus, bool enable);
