/* The sealbox subcommands, one file each (appliance/cmd_*.c).  Each takes
 * argv starting at its own name and returns a documented exit code. */
#ifndef SBX_CMDS_H
#define SBX_CMDS_H

#include "appliance/cli.h"

int cmd_init(int argc, char **argv, struct cli *g);
int cmd_identity(int argc, char **argv, struct cli *g);
int cmd_hold(int argc, char **argv, struct cli *g);
int cmd_policy(int argc, char **argv, struct cli *g);
int cmd_log(int argc, char **argv, struct cli *g);
int cmd_ingest(int argc, char **argv, struct cli *g);
int cmd_bundle(int argc, char **argv, struct cli *g);
int cmd_release(int argc, char **argv, struct cli *g);
int cmd_alarm(int argc, char **argv, struct cli *g);
int cmd_trust(int argc, char **argv, struct cli *g);
int cmd_recipient(int argc, char **argv, struct cli *g);

#endif
