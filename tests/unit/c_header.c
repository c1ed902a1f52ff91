/* Keeps include/rwkv/rwkv.h valid C99: compiled with -std=c99 -Wall -Wextra -pedantic -Werror, and run. */
#include "rwkv/rwkv.h"

#include <stdio.h>
#include <string.h>

int main(void) {
    rwkv_model_params mp = rwkv_model_default_params();
    rwkv_context_params cp = rwkv_context_default_params();
    rwkv_model* model = NULL;
    rwkv_status st = rwkv_model_load(NULL, &mp, &model);
    (void)cp;
    if (st != RWKV_STATUS_INVALID_ARGUMENT || strlen(rwkv_last_error_message()) == 0) {
        fprintf(stderr, "expected INVALID_ARGUMENT with a message, got %s\n", rwkv_status_string(st));
        return 1;
    }
    /* Any int is a valid rwkv_status value in C; unknown ones have a string too. */
    if (strcmp(rwkv_status_string((rwkv_status)99), "unknown status") != 0 ||
        strcmp(rwkv_status_string((rwkv_status)-1), "unknown status") != 0) {
        fprintf(stderr, "rwkv_status_string of an unknown status is not \"unknown status\"\n");
        return 1;
    }
    rwkv_model_free(NULL);
    rwkv_context_free(NULL);
    rwkv_state_free(NULL);
    printf("%s\n", rwkv_version());
    return 0;
}
