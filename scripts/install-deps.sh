#!/usr/bin/env bash
# Installs the Debian packages tessera needs to build, run and test (Debian 12).
#   scripts/install-deps.sh                      install whatever is missing, saying what it does
#   scripts/install-deps.sh --check-or-install   silent when everything is there (used by `make test`)
set -euo pipefail

# Each package, and what it gives the project.
PACKAGES=(
	gcc make nasm python3             # the build and the test runner
	grub-pc-bin grub-efi-amd64-bin    # GRUB for BIOS and UEFI ISOs
	grub-common xorriso mtools        # grub-mkrescue and what it calls
	qemu-system-x86 ovmf              # QEMU (boot path, SMP, memory maps) and its UEFI firmware
	bochs bochs-term bochsbios vgabios # Bochs, the VMX machine; bochs-term is its headless display
	acpica-tools                      # iasl: compiles the guests' DSDT (loader/dsdt.asl); acpiexec for its test
	clang libclang-rt-14-dev          # libFuzzer harnesses (make fuzz-host; clang only recommends the runtime)
)

quiet=0
case "${1:-}" in
	--check-or-install) quiet=1 ;;
	"") ;;
	*) echo "usage: $0 [--check-or-install]" >&2; exit 2 ;;
esac

missing=()
for p in "${PACKAGES[@]}"; do
	if [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" != "install ok installed" ]; then
		missing+=("$p")
	fi
done

if [ ${#missing[@]} -eq 0 ]; then
	[ $quiet -eq 1 ] || echo "install-deps: all ${#PACKAGES[@]} packages are installed"
	exit 0
fi

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
	sudo=()
elif command -v sudo >/dev/null; then
	sudo=(sudo)
else
	echo "install-deps: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
