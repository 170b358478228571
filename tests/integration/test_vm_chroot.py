"""VM tier, chroot guest: one boot of Debian's stock kernel (kernel WireGuard) under QEMU/TCG runs
every check in tests/vm/checks/chroot/ against the host's own binaries; each check is a test here.
Skipped when the tier cannot run here (no qemu, no kernel, NM_VM_TESTS=0); see docs/testing.md."""

import pytest

from nmtest import vm

MODE = "chroot"


@pytest.fixture(scope="module")
def boot(request):
    machine = vm.require()
    result = machine.run_checks(MODE)
    vm.print_timing(request, result)
    return result


def test_guest_ran_the_checks(boot):
    boot.assert_finished()


@pytest.mark.parametrize("name", vm.discover_checks(MODE))
def test_check(boot, name):
    boot.assert_check(name)
