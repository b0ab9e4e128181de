/*
 * A refresh that cannot connect, then tokengate_client_free() and exit: valgrind's default leak
 * check must find nothing (ffi/tests/examples.rs runs this under memcheck).
 *
 *   refresh_fails BASE_URL TOKEN_URL
 *
 * BASE_URL is the test server's API (which rejects the made-up token), TOKEN_URL a closed port.
 */
#include <stdio.h>
#include <string.h>

#include "tokengate.h"

int main(int argc, char **argv) {
    tokengate_client_builder *builder = NULL;
    tokengate_token *token = NULL;
    tokengate_client *client = NULL;
    tokengate_response *response = NULL;
    tokengate_error *error = NULL;
    tokengate_result code;
    if (argc != 3) {
        fprintf(stderr, "usage: %s BASE_URL TOKEN_URL\n", argv[0]);
        return 2;
    }
    if (tokengate_client_builder_new(argv[1], &builder, &error) != TOKENGATE_RESULT_OK ||
        tokengate_client_builder_set_oauth2(builder, TOKENGATE_GRANT_REFRESH_TOKEN, argv[2],
                                            &error) != TOKENGATE_RESULT_OK ||
        tokengate_client_builder_set_refresh_timeout_ms(builder, 2000, &error) !=
            TOKENGATE_RESULT_OK ||
        /* Longer than the budget: one attempt, whose failure is the request's error. */
        tokengate_client_builder_set_refresh_backoff_ms(builder, 4000, 4000, &error) !=
            TOKENGATE_RESULT_OK ||
        tokengate_token_new("made-up", &token, &error) != TOKENGATE_RESULT_OK ||
        tokengate_token_set_refresh_token(token, "made-up-refresh", &error) !=
            TOKENGATE_RESULT_OK ||
        tokengate_client_builder_set_token(builder, token, &error) != TOKENGATE_RESULT_OK ||
        tokengate_client_builder_build(builder, &client, &error) != TOKENGATE_RESULT_OK) {
        fprintf(stderr, "setup: %s\n", tokengate_error_message(error, NULL));
        return 1;
    }
    tokengate_token_free(token);
    tokengate_client_builder_free(builder);

    /* Rejected by the API, then the refresh fails to connect: a transient failure. */
    code = tokengate_client_request(client, "GET", "/x", NULL, 0, NULL, 0, &response, &error);
    if (code != TOKENGATE_RESULT_REFRESH_FAILED || response != NULL ||
        !tokengate_error_is_transient(error)) {
        fprintf(stderr, "expected a transient refresh failure, got %u\n", (unsigned)code);
        return 1;
    }
    printf("%s\n", tokengate_error_message(error, NULL));
    tokengate_error_free(error);
    /* The same error, kept for this thread too. */
    error = tokengate_last_error();
    if (error == NULL || tokengate_error_code(error) != TOKENGATE_RESULT_REFRESH_FAILED) {
        return 1;
    }
    tokengate_error_free(error);
    tokengate_client_free(client);
    return 0;
}
