/* The header must compile as strict C89 (gcc -std=c89 -pedantic -Werror, see ffi/tests/install.rs)
 * and as C++ (g++ -std=c++98): a library header is included by code of every vintage. */
#include "tokengate.h"

static void on_event(void *user_data, const tokengate_event *event) {
    (void)user_data;
    (void)event->kind;
}

int main(void) {
    tokengate_error *error = NULL;
    tokengate_stats stats;
    tokengate_event_callback callback = on_event;
    (void)callback;
    (void)stats;
    if (TOKENGATE_CHECK_VERSION(&error) != TOKENGATE_RESULT_OK) {
        tokengate_error_free(error);
        return 1;
    }
    return 0;
}
