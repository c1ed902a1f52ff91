#include "backend/cpu_backend.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace rwkv {

void CpuBackend::embed(const EmbedArgs& a) {
    for (int t = 0; t < a.T; t++) std::copy_n(a.emb + int64_t(a.tokens[t]) * a.C, a.C, a.x + int64_t(t) * a.C);
}

bool cpu_reference_requested() {
    const char* v = std::getenv("RWKV_CPU_REFERENCE");
    return v && std::strcmp(v, "1") == 0;
}

}  // namespace rwkv
