/*
 * Several pthreads share one tokengate client. The program runs in rounds: before each round it
 * sleeps until the token has expired, then releases every thread at once; each sends a few requests.
 * However many threads find the token expired, tokengate refreshes it exactly once per round.
 *
 *   threads BASE_URL TOKEN_URL ACCESS_TOKEN REFRESH_TOKEN LIFETIME_SECS THREADS ROUNDS REQUESTS
 *
 * BASE_URL is the API (e.g. http://127.0.0.1:PORT/api), TOKEN_URL the OAuth2 token endpoint,
 * ACCESS_TOKEN / REFRESH_TOKEN a login's tokens, LIFETIME_SECS the access tokens' lifetime. The last
 * line printed is "RESULT ok=N failed=N refreshes=N waits=N login_required=N"; the exit code is 0
 * when every request succeeded.
 *
 * ffi/tests/examples.rs compiles and runs this against the loopback test server (also under
 * valgrind); ffi/tests/install.rs builds it through pkg-config, CMake and Meson. ffi/README.md
 * shows the build lines.
 */
#define _POSIX_C_SOURCE 200809L

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tokengate.h"

struct shared {
    const tokengate_client *client;
    pthread_barrier_t start, end;
    int rounds, requests;
    atomic_int ok, failed, login_required;
};

struct worker {
    struct shared *shared;
    int index;
};

/* Prints a failed call's error and frees it. */
static void report_error(const char *what, tokengate_result code, tokengate_error *error) {
    fprintf(stderr, "%s failed: code %u: %s\n", what, (unsigned)code,
            error ? tokengate_error_message(error, NULL) : "(no details)");
    tokengate_error_free(error);
}

/* Called on the thread whose refresh was refused for good. Never expected in this example. */
static void on_login_required(void *user_data, const tokengate_error *error) {
    struct shared *shared = user_data;
    atomic_fetch_add(&shared->login_required, 1);
    fprintf(stderr, "login required: %s\n", tokengate_error_message(error, NULL));
}

/* One request; returns 1 when it got a 200 whose body is the API's {"ok":true,...}. */
static int request(const tokengate_client *client, int thread, int round, int n) {
    char path[64];
    snprintf(path, sizeof path, "/c/thread/%d/round/%d/%d", thread, round, n);
    tokengate_header headers[] = {{"Accept", "application/json"}, {"X-Example", "threads.c"}};
    static const uint8_t payload[] = "{\"hello\":\"from C\"}";
    int post = n % 2 == 1; /* every other request carries a body */

    tokengate_response *response = NULL;
    tokengate_error *error = NULL; /* this thread's own: no thread-local needed */
    tokengate_result code = tokengate_client_request(
        client, post ? "POST" : "GET", path, headers, sizeof headers / sizeof headers[0],
        post ? payload : NULL, post ? sizeof payload - 1 : 0, &response, &error);
    if (code != TOKENGATE_RESULT_OK) {
        report_error("request", code, error);
        return 0;
    }
    int good = 0;
    const uint8_t *body = NULL;
    const char *type = NULL;
    size_t body_len = 0;
    uint16_t status = tokengate_response_status(response);
    if (status == 200 &&
        tokengate_response_body(response, 64 * 1024, &body, &body_len, NULL) == TOKENGATE_RESULT_OK &&
        tokengate_response_header(response, "content-type", &type, NULL) == TOKENGATE_RESULT_OK) {
        good = body_len >= 11 && memcmp(body, "{\"ok\":true", 10) == 0 &&
               strcmp(type, "application/json") == 0;
    }
    if (!good) {
        fprintf(stderr, "thread %d: unexpected response: HTTP %u, %.*s\n", thread, status,
                (int)body_len, body ? (const char *)body : "");
    }
    tokengate_response_free(response);
    return good;
}

static void *work(void *arg) {
    struct worker *w = arg;
    struct shared *s = w->shared;
    for (int round = 0; round < s->rounds; round++) {
        pthread_barrier_wait(&s->start);
        for (int n = 0; n < s->requests; n++) {
            if (request(s->client, w->index, round, n)) {
                atomic_fetch_add(&s->ok, 1);
            } else {
                atomic_fetch_add(&s->failed, 1);
            }
        }
        pthread_barrier_wait(&s->end);
    }
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&t, &t) != 0) {
    }
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr,
                "usage: %s BASE_URL TOKEN_URL ACCESS_TOKEN REFRESH_TOKEN LIFETIME_SECS THREADS "
                "ROUNDS REQUESTS\n",
                argv[0]);
        return 2;
    }
    long lifetime = atol(argv[5]);
    int threads = atoi(argv[6]);
    struct shared shared = {.rounds = atoi(argv[7]), .requests = atoi(argv[8])};
    if (lifetime < 1 || threads < 1 || shared.rounds < 1 || shared.requests < 1) {
        fprintf(stderr, "LIFETIME_SECS, THREADS, ROUNDS and REQUESTS must be positive\n");
        return 2;
    }

    /* A program built against this header refuses to run on an older library. */
    tokengate_error *error = NULL;
    tokengate_result code = TOKENGATE_CHECK_VERSION(&error);
    if (code != TOKENGATE_RESULT_OK) {
        report_error("tokengate_check_version", code, error);
        return 1;
    }
    printf("tokengate %s\n", tokengate_version());

    tokengate_client_builder *builder = NULL;
    tokengate_token *token = NULL;
    tokengate_client *client = NULL;
    if ((code = tokengate_client_builder_new(argv[1], &builder, &error)) != TOKENGATE_RESULT_OK ||
        (code = tokengate_client_builder_set_oauth2(builder, TOKENGATE_GRANT_REFRESH_TOKEN, argv[2],
                                                    &error)) != TOKENGATE_RESULT_OK ||
        (code = tokengate_client_builder_set_client_id(builder, "demo-client", &error)) !=
            TOKENGATE_RESULT_OK ||
        (code = tokengate_client_builder_set_client_secret(builder, "demo-secret", &error)) !=
            TOKENGATE_RESULT_OK ||
        (code = tokengate_client_builder_set_refresh_timeout_ms(builder, 20000, &error)) !=
            TOKENGATE_RESULT_OK ||
        (code = tokengate_token_new(argv[3], &token, &error)) != TOKENGATE_RESULT_OK ||
        (code = tokengate_token_set_expires_in_ms(token, (uint64_t)lifetime * 1000, &error)) !=
            TOKENGATE_RESULT_OK ||
        (code = tokengate_token_set_refresh_token(token, argv[4], &error)) != TOKENGATE_RESULT_OK ||
        (code = tokengate_client_builder_set_token(builder, token, &error)) != TOKENGATE_RESULT_OK ||
        (code = tokengate_client_builder_build(builder, &client, &error)) != TOKENGATE_RESULT_OK) {
        report_error("building the client", code, error);
        tokengate_token_free(token);
        tokengate_client_builder_free(builder);
        return 1;
    }
    /* The builder copied what it needed. */
    tokengate_token_free(token);
    tokengate_client_builder_free(builder);

    code = tokengate_client_set_login_required_callback(client, on_login_required, &shared, &error);
    if (code != TOKENGATE_RESULT_OK) {
        report_error("tokengate_client_set_login_required_callback", code, error);
        return 1;
    }
    shared.client = client;

    pthread_barrier_init(&shared.start, NULL, (unsigned)threads + 1);
    pthread_barrier_init(&shared.end, NULL, (unsigned)threads + 1);
    pthread_t *ids = calloc((size_t)threads, sizeof *ids);
    struct worker *workers = calloc((size_t)threads, sizeof *workers);
    if (!ids || !workers) {
        return 1;
    }
    for (int i = 0; i < threads; i++) {
        workers[i] = (struct worker){&shared, i};
        if (pthread_create(&ids[i], NULL, work, &workers[i]) != 0) {
            fprintf(stderr, "cannot start thread %d\n", i);
            return 1;
        }
    }
    for (int round = 0; round < shared.rounds; round++) {
        sleep_ms(lifetime * 1000 + 50); /* the current token has expired now */
        pthread_barrier_wait(&shared.start);
        pthread_barrier_wait(&shared.end);
        printf("round %d done\n", round + 1);
        fflush(stdout);
    }
    for (int i = 0; i < threads; i++) {
        pthread_join(ids[i], NULL);
    }

    tokengate_stats stats = {0};
    tokengate_client_stats(client, &stats, sizeof stats, NULL);
    printf("RESULT ok=%d failed=%d refreshes=%llu waits=%llu login_required=%d\n",
           atomic_load(&shared.ok), atomic_load(&shared.failed),
           (unsigned long long)stats.refreshes, (unsigned long long)stats.waits,
           atomic_load(&shared.login_required));

    tokengate_client_free(client);
    pthread_barrier_destroy(&shared.start);
    pthread_barrier_destroy(&shared.end);
    free(ids);
    free(workers);
    return atomic_load(&shared.failed) == 0 ? 0 : 1;
}
