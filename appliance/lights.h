/* The box's three LEDs as the technician reads them (docs/OPERATIONS.md,
 * "The lights"): one state at a time, named for what it tells.  Lighting
 * never changes the outcome of anything: a failure to light is ignored. */
#ifndef SBX_LIGHTS_H
#define SBX_LIGHTS_H

#include "hw/hw.h"

enum lights {
	LIGHTS_OFF,             /* all off: the button layer blinks amber itself */
	LIGHTS_READY,           /* green solid */
	LIGHTS_WORKING,         /* amber solid */
	LIGHTS_DONE,            /* green blinking */
	LIGHTS_FAILED,          /* red solid: denied or failed */
	LIGHTS_ALARM,           /* red blinking: integrity alarm */
};

/* On an open GPIO (NULL: nothing). */
void lights_show(struct hw *hw, enum lights s);
/* Opens SPEC (--gpio / SEALBOX_GPIO; NULL or "": nothing), shows s, closes.
 * Call only under the box's lock, or for the alarm: a release waiting for
 * its button holds the lock and owns the lights meanwhile. */
void lights_show_spec(const char *spec, enum lights s);

#endif
