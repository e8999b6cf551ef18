/*
 * gcoptions.c — print the table of environment settings (gc/options.c)
 * as Markdown: the README's "Environment" table. `make readme-options`
 * puts it between the README's options markers.
 */
#include "../gc/options.h"

int main(void)
{
    options_print_markdown(stdout);
    return 0;
}
