#include "backend/cpu_backend.h"

#include <algorithm>

namespace rwkv {

void CpuBackend::embed(const EmbedArgs& a) {
    for (int t = 0; t < a.T; t++) std::copy_n(a.emb + int64_t(a.tokens[t]) * a.C, a.C, a.x + int64_t(t) * a.C);
}

}  // namespace rwkv
