/*
 * The DSDT of every guest (loader/acpi.c embeds the AML that iasl makes of this file).
 *
 * Only what a guest's OS needs to find its devices and power itself off on a hardware-reduced ACPI
 * platform (ACPI 6.3, 4.1 "Hardware-Reduced ACPI"):
 *   COM1   the 16550 UART at 0x3F8-0x3FF on ISA IRQ 4 (vdev/uart.c); Linux's 8250_pnp binds it by
 *          PNP0501 and takes its interrupt from _CRS (without it ttyS0 never gets its IRQ).
 *   \_S5   the soft-off sleep state (ACPI 6.3, 7.4.2): its SLP_TYP value goes to bits 4:2 of the FADT's
 *          sleep control register with SLP_EN (bit 5); loader/acpi.h ACPI_S5_SLP_TYP must equal it.
 * No PCI bus, no _PIC, no _PTS: nothing the platform does not have.
 */
DefinitionBlock ("", "DSDT", 2, "TESSER", "TesseraH", 1)
{
    Scope (\_SB)
    {
        Device (COM1)
        {
            Name (_HID, EisaId ("PNP0501"))     // 16550A-compatible COM port
            Name (_UID, 1)
            Name (_CRS, ResourceTemplate ()
            {
                IO (Decode16, 0x03F8, 0x03F8, 0x01, 0x08)
                IRQNoFlags () {4}
            })
        }
    }

    /* SLP_TYPa, SLP_TYPb, reserved, reserved. Only SLP_TYPa is used on a hardware-reduced platform. */
    Name (\_S5, Package (4) { 5, 5, 0, 0 })
}
