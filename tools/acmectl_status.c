/* acmectl_status.c - acmectl status: not built yet. */
#include "acmectl.h"

int acmectl_status(acmectl_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(ctx->err, "acmectl status: not built yet\n");
    return ACMECTL_EXIT_USAGE;
}
