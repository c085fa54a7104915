#include "appliance/lights.h"

void lights_show(struct hw *hw, enum lights s)
{
	static const enum hw_led_state table[][3] = {
		/*                 green          amber          red */
		[LIGHTS_OFF]     = { HW_LED_OFF,   HW_LED_OFF,   HW_LED_OFF },
		[LIGHTS_READY]   = { HW_LED_ON,    HW_LED_OFF,   HW_LED_OFF },
		[LIGHTS_WORKING] = { HW_LED_OFF,   HW_LED_ON,    HW_LED_OFF },
		[LIGHTS_DONE]    = { HW_LED_BLINK, HW_LED_OFF,   HW_LED_OFF },
		[LIGHTS_FAILED]  = { HW_LED_OFF,   HW_LED_OFF,   HW_LED_ON },
		[LIGHTS_ALARM]   = { HW_LED_OFF,   HW_LED_OFF,   HW_LED_BLINK },
	};

	if (hw == NULL)
		return;
	hw_led(hw, HW_GREEN, table[s][0], NULL);
	hw_led(hw, HW_AMBER, table[s][1], NULL);
	hw_led(hw, HW_RED, table[s][2], NULL);
}

void lights_show_spec(const char *spec, enum lights s)
{
	struct sbx_err ignore = { 0 };
	struct hw *hw = NULL;

	if (spec == NULL || spec[0] == '\0')
		return;
	if (hw_open(spec, &hw, &ignore) != 0)
		return;
	lights_show(hw, s);
	hw_close(hw);
}
