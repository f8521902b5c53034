/* console_assets.c - the console's static pages, style sheet and script,
 * compiled into the binary
 *
 * DESIGN: the files live in worker/console/ as ordinary HTML, CSS and
 * JavaScript (readable, diffable); the build turns each into a C array
 * (worker/console/embed.cmake), so a running orderd serves them from
 * memory: no build step, no directory to install beside it, nothing from
 * the internet. The pages that show database rows (an order, the dead
 * letters) are rendered by console_pages.c instead.
 */
#include <string.h>

#include "console.h"

extern const char console_overview_html[];
extern const char console_analytics_html[];
extern const char console_css[];
extern const char console_js[];
extern const char console_favicon_svg[];

static const console_asset_t assets[] = {
    {"/", "text/html; charset=utf-8", console_overview_html},
    {"/analytics", "text/html; charset=utf-8", console_analytics_html},
    {"/console.css", "text/css; charset=utf-8", console_css},
    {"/console.js", "text/javascript; charset=utf-8", console_js},
    {"/favicon.svg", "image/svg+xml", console_favicon_svg},
};

const console_asset_t *
console_asset(const char *path)
{
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
        if (strcmp(assets[i].path, path) == 0)
            return &assets[i];
    return NULL;
}
