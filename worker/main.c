/* main.c - temporary entry point while the CLI is written */
#include <stdio.h>
int main(void);
int
main(void)
{
    return 0;
}
