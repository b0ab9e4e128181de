/*
 * A program built against the current header, run by ffi/tests/install.rs on the library it was
 * built with and then, unchanged, on a newer one (built with the `abi-probe` feature: one more
 * builder setter, one more field at the end of tokengate_stats and tokengate_event, a higher minor
 * version). Everything it does must keep working.
 *
 *   old_program BASE_URL TOKEN_URL REFRESH_TOKEN
 *
 * Prints "RESULT version=V status=S refreshes=R events=E canary=ok" and exits 0 when all is well.
 */
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "tokengate.h"

static atomic_int refreshed_events;

static void on_event(void *user_data, const tokengate_event *event) {
    (void)user_data;
    /* Only the fields this header knows; a newer library may have more after them. */
    if (event->kind == TOKENGATE_EVENT_REFRESHED && event->generation >= 2 &&
        event->error == NULL) {
        atomic_fetch_add(&refreshed_events, 1);
    }
}

static int fail(const char *what, tokengate_error *error) {
    fprintf(stderr, "%s: %s\n", what, error ? tokengate_error_message(error, NULL) : "?");
    tokengate_error_free(error);
    return 1;
}

int main(int argc, char **argv) {
    tokengate_error *error = NULL;
    tokengate_client_builder *builder = NULL;
    tokengate_client *client = NULL;
    tokengate_response *response = NULL;
    /* The stats as this program knows them, with a guard after them that must survive. */
    struct {
        tokengate_stats stats;
        uint64_t canary;
    } guarded;
    if (argc != 4) {
        fprintf(stderr, "usage: %s BASE_URL TOKEN_URL REFRESH_TOKEN\n", argv[0]);
        return 2;
    }
    if (TOKENGATE_CHECK_VERSION(&error) != TOKENGATE_RESULT_OK) {
        return fail("version", error);
    }
    if (tokengate_client_builder_new(argv[1], &builder, &error) != TOKENGATE_RESULT_OK ||
        tokengate_client_builder_set_oauth2(builder, TOKENGATE_GRANT_REFRESH_TOKEN, argv[2],
                                            &error) != TOKENGATE_RESULT_OK ||
        tokengate_client_builder_set_client_id(builder, "demo-client", &error) !=
            TOKENGATE_RESULT_OK ||
        tokengate_client_builder_set_client_secret(builder, "demo-secret", &error) !=
            TOKENGATE_RESULT_OK ||
        tokengate_client_builder_set_refresh_token(builder, argv[3], &error) !=
            TOKENGATE_RESULT_OK ||
        tokengate_client_builder_build(builder, &client, &error) != TOKENGATE_RESULT_OK) {
        return fail("build", error);
    }
    tokengate_client_builder_free(builder);
    if (tokengate_client_set_event_callback(client, on_event, NULL, &error) != TOKENGATE_RESULT_OK) {
        return fail("events", error);
    }
    if (tokengate_client_request(client, "GET", "/old-program", NULL, 0, NULL, 0, &response,
                                 &error) != TOKENGATE_RESULT_OK) {
        return fail("request", error);
    }
    memset(&guarded, 0, sizeof guarded);
    guarded.canary = 0x5A5A5A5A5A5A5A5AULL;
    if (tokengate_client_stats(client, &guarded.stats, sizeof guarded.stats, &error) !=
        TOKENGATE_RESULT_OK) {
        return fail("stats", error);
    }
    printf("RESULT version=%s status=%u refreshes=%llu", tokengate_version(),
           (unsigned)tokengate_response_status(response),
           (unsigned long long)guarded.stats.refreshes);
    tokengate_response_free(response);
    tokengate_client_free(client); /* joins the event thread: every event was delivered */
    printf(" events=%d canary=%s\n", atomic_load(&refreshed_events),
           guarded.canary == 0x5A5A5A5A5A5A5A5AULL ? "ok" : "overwritten");
    return 0;
}
