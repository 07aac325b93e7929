/*
 * ui_docs.c: the web UI's Help, Ferry's documentation compiled in (ui.h: fy_ui_docs, generated into docs_embed.c by
 * cmake/embed_docs.cmake; HTML rendered at build time by cmark-gfm, or the Markdown without it: nothing is rendered
 * here). Lookups go by exact name in the fixed table: a request path is compared, never opened, so "../" or any other
 * name is simply not found. Apart from ui.c so that the unit tests of the page need no docs.
 */
#include <string.h>

#include "ui.h"

const fy_ui_doc_t *fy_ui_doc(const char *name, size_t len)
{
    for (size_t i = 0; i < fy_ui_ndocs; i++)
        if (strlen(fy_ui_docs[i].name) == len && memcmp(fy_ui_docs[i].name, name, len) == 0)
            return &fy_ui_docs[i];
    return NULL;
}

int fy_ui_doc_index(fy_buf_t *out)
{
    fy_buf_str(out, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Ferry documentation</title>"
                    "<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:50em}li{margin:.3em 0}</style>"
                    "</head><body>\n<h1>Ferry documentation</h1>\n<p><a href=\"../../\">&larr; back to the groups</a></p>\n");
    if (fy_ui_docs_html)
        fy_buf_str(out, "<p>The pages below are the docs/ of the Ferry release this server runs, rendered to HTML when it was "
                        "built (the same files read as Markdown in the repository and the release's docs/).</p>\n<ul>\n");
    else
        fy_buf_str(out, "<p>The pages below are the docs/ of the Ferry release this server runs, as plain text (Markdown): "
                        "it was built without cmark-gfm, which renders them to HTML.</p>\n<ul>\n");
    for (size_t i = 0; i < fy_ui_ndocs; i++) {
        const fy_ui_doc_t *d = &fy_ui_docs[i];
        if (d->title == NULL)
            continue; /* an image of a page */
        fy_buf_printf(out, "<li><a href=\"%s\">%s</a>: ", d->name, d->name);
        fy_html_escape(out, d->title, strlen(d->title));
        fy_buf_str(out, "</li>\n");
    }
    fy_buf_str(out, "</ul>\n</body></html>\n");
    return out->oom ? -1 : 0;
}
