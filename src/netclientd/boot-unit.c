/* Makes netclientd start at boot while this host is joined: after a join the unit is enabled
 * through systemd's D-Bus API (as "systemctl enable" does), after the last leave disabled again,
 * so a rebooted machine brings its links back before anyone calls the bus. */
#include <stdlib.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-daemon.h>

#include "boot-unit.h"
#include "log.h"
#include "macro.h"

#define UNIT "netclientd.service"

static int on_reply(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error)
{
        bool enable = PTR_TO_BOOL(userdata);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        int carries_install_info = 0, r;
        unsigned changes = 0;

        if (e) {
                log_warning("Could not %s " UNIT " with systemd: %s. Run \"systemctl %s " UNIT
                            "\" instead%s.",
                            enable ? "enable" : "disable", e->message, enable ? "enable" : "disable",
                            enable ? " so that this host's links come back after a reboot" : "");
                return 0;
        }
        if (enable) {
                r = sd_bus_message_read(reply, "b", &carries_install_info);
                if (r < 0)
                        return log_warning_errno(r, "Unreadable answer to EnableUnitFiles: %m");
        }
        r = sd_bus_message_enter_container(reply, 'a', "(sss)");
        while (r > 0) {
                const char *type, *path, *source;
                r = sd_bus_message_read(reply, "(sss)", &type, &path, &source);
                if (r > 0) {
                        log_debug("systemd: %s %s%s%s", type, path, *source ? " -> " : "", source);
                        changes++;
                }
        }
        if (changes > 0)
                log_info(enable ? "netclientd starts at boot from now on (" UNIT
                                  " enabled), so this host's links "
                                  "come back after a reboot."
                                : "netclientd no longer starts at boot (" UNIT
                                  " disabled): this host left its "
                                  "last network.");
        return 0;
}

void boot_unit_set(sd_bus *bus, bool enable)
{
        int r;

        /* Only under systemd, and only for the service systemd started (not a netclientd run by
         * hand or in tests). */
        if (!bus || sd_booted() <= 0 || !getenv("INVOCATION_ID"))
                return;
        if (enable)
                r = sd_bus_call_method_async(bus, NULL, "org.freedesktop.systemd1",
                                             "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                             "EnableUnitFiles", on_reply, BOOL_TO_PTR(true), "asbb", 1, UNIT,
                                             false, false);
        else
                r = sd_bus_call_method_async(bus, NULL, "org.freedesktop.systemd1",
                                             "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
                                             "DisableUnitFiles", on_reply, BOOL_TO_PTR(false), "asb", 1,
                                             UNIT, false);
        if (r < 0)
                log_warning_errno(r, "Failed to ask systemd to %s " UNIT ": %m",
                                  enable ? "enable" : "disable");
}
