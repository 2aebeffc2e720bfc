// lorascope analyze: the paper's Section 7 analyses over adapters and a base.
#include <stdio.h>

#include "cli/commands.h"

int cmd_analyze(int argc, char **argv) {
    if (cli_wants_help(argc, argv)) {
        printf("usage: lorascope analyze subspace|amplify|w-vs-dw|spectrum|intruders ...\n");
        return 0;
    }
    fprintf(stderr, "lorascope analyze: not built yet\n");
    return 2;
}
