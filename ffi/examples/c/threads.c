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
 * ffi/tests/examples.rs compiles and runs this against the loopback test server; ffi/README.md
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

/* Prints this thread's last tokengate error and frees it. */
static void report_error(const char *what, tokengate_result code) {
    tokengate_error *error = tokengate_last_error();
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
    tokengate_result code = tokengate_client_request(
        client, post ? "POST" : "GET", path, headers, sizeof headers / sizeof headers[0],
        post ? payload : NULL, post ? sizeof payload - 1 : 0, &response);
    if (code != TOKENGATE_RESULT_OK) {
        report_error("request", code);
        return 0;
    }
    int good = 0;
    const uint8_t *body = NULL, *type = NULL;
    size_t body_len = 0, type_len = 0;
    uint16_t status = tokengate_response_status(response);
    if (status == 200 && tokengate_response_body(response, &body, &body_len) == TOKENGATE_RESULT_OK &&
        tokengate_response_header(response, "content-type", &type, &type_len) == TOKENGATE_RESULT_OK) {
        good = body_len >= 11 && memcmp(body, "{\"ok\":true", 10) == 0 && type_len >= 16 &&
               memcmp(type, "application/json", 16) == 0;
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

    tokengate_config config = {0};
    config.base_url = argv[1];
    config.token_url = argv[2];
    config.access_token = argv[3];
    config.refresh_token = argv[4];
    config.expires_in_secs = (uint64_t)lifetime;
    config.client_id = "demo-client";
    config.client_secret = "demo-secret";
    config.refresh_timeout_ms = 20000;

    tokengate_client *client = NULL;
    tokengate_result code = tokengate_client_new(&config, &client);
    if (code != TOKENGATE_RESULT_OK) {
        report_error("tokengate_client_new", code);
        return 1;
    }
    code = tokengate_client_set_login_required_callback(client, on_login_required, &shared);
    if (code != TOKENGATE_RESULT_OK) {
        report_error("tokengate_client_set_login_required_callback", code);
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
    tokengate_client_stats(client, &stats);
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
