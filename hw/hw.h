/* The box's button and LEDs.
 *
 * One interface, two backends chosen by a spec string:
 *   chip:NAME[,button=LINE][,green=LINE][,amber=LINE][,red=LINE]
 *            [,button_active=high|low][,led_active=high|low]
 *       libgpiod on a GPIO chip (NAME as gpiod_chip_open_lookup takes it:
 *       "gpiochip0", "/dev/gpiochip0", a label or a number).  LINE is a line
 *       name (defaults BUTTON, LED_GREEN, LED_AMBER, LED_RED) or, when all
 *       digits, an offset.
 *   sim:SOCKET
 *       the sealbox-gpiosim simulator listening on the unix socket SOCKET.
 *       Not present in release builds (make RELEASE=1): hw_open refuses it.
 * The caller reads the spec from --gpio or SEALBOX_GPIO; this layer never
 * looks at the environment.  See hw/README.md. */
#ifndef SBX_HW_H
#define SBX_HW_H

#include "crypto/err.h"

#define HW_CONFIRM_TIMEOUT_MS_DEFAULT 60000u

struct hw;

enum hw_color { HW_GREEN, HW_AMBER, HW_RED };
enum hw_led_state { HW_LED_OFF, HW_LED_ON, HW_LED_BLINK };

/* A handle is used by one thread at a time (the gpiod backend's blink
 * thread is internal). */
int hw_open(const char *spec, struct hw **out, struct sbx_err *e);

/* Stops blinking (the gpiod backend's blink thread) and releases the lines
 * or the connection.  LEDs keep whatever level they had.  NULL is fine. */
void hw_close(struct hw *hw);

int hw_led(struct hw *hw, enum hw_color color, enum hw_led_state state,
	   struct sbx_err *e);

/* Ask for one fresh press-and-release (rules in hw/button.h): drain edges
 * queued before now, arm, set the amber LED blinking (so a blinking amber
 * always means "armed"), then wait up to `timeout_ms` (> 0).  Returns 0 when
 * confirmed, SBX_ECANCELED when the time ran out, another SBX_E* code when
 * the hardware failed.  Amber is left blinking: the caller sets the next
 * state at once (amber on: working; red on: denied or failed). */
int hw_confirm(struct hw *hw, unsigned timeout_ms, struct sbx_err *e);

#endif
