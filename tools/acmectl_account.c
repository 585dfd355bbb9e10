/* acmectl_account.c - acmectl account: not built yet. */
#include "acmectl.h"

int acmectl_account(acmectl_t *ctx, int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(ctx->err, "acmectl account: not built yet\n");
    return ACMECTL_EXIT_USAGE;
}
