/* C guest: exported to the host as `fib`, the same function as the Swift guest's. */
#include <stdint.h>

__attribute__((export_name("fib")))
int32_t fib(int32_t n) {
    uint32_t a = 0, b = 1;
    for (int32_t i = 0; i < n; i++) {
        uint32_t next = a + b; /* wraps like Swift's &+ */
        a = b;
        b = next;
    }
    return (int32_t)a;
}
