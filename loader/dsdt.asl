/*
 * The DSDT of every guest (loader/acpi.c embeds the AML that iasl makes of this file).
 *
 * Only what a guest's OS needs to find its devices and power itself off; the fixed hardware (PM1
 * blocks, PM timer, SCI) is in the FADT (loader/acpi.h):
 *   COM1   the 16550 UART at 0x3F8-0x3FF on ISA IRQ 4 (vdev/uart.c); Linux's 8250_pnp binds it by
 *          PNP0501 and takes its interrupt from _CRS (without it ttyS0 never gets its IRQ).
 *   \_S5   the soft-off sleep state (ACPI 6.3, 7.4.2): its SLP_TYPa value goes to bits 12:10 of PM1a_CNT
 *          with SLP_EN (bit 13; ACPI 6.3, 4.8.4.2.1); loader/acpi.h ACPI_S5_SLP_TYP must equal it.
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

    /* SLP_TYPa, SLP_TYPb, reserved, reserved. There is no PM1b block: SLP_TYPb is not used. */
    Name (\_S5, Package (4) { 5, 5, 0, 0 })
}
