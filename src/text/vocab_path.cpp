#include "text/vocab_path.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "common/error.h"

#ifndef RWKV_INSTALL_DATADIR
#define RWKV_INSTALL_DATADIR "/usr/local/share/rwkv"
#endif

namespace rwkv {

std::string find_vocab() {
    if (const char* env = std::getenv("RWKV_VOCAB"); env && *env) return env;
    std::vector<std::string> tried;
    std::error_code ec;
    std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        tried.push_back((exe.parent_path().parent_path() / "share/rwkv" / kVocabFileName).string());
        tried.push_back((exe.parent_path() / "share/rwkv" / kVocabFileName).string());
    }
    tried.push_back(std::string(RWKV_INSTALL_DATADIR) + "/" + kVocabFileName);
    for (const std::string& p : tried)
        if (std::filesystem::is_regular_file(p, ec)) return p;
    std::string list;
    for (const std::string& p : tried) list += "\n  " + p;
    throw_io(std::string("cannot find the World vocabulary ") + kVocabFileName +
             " (set RWKV_VOCAB, pass --vocab, or run tools/setup_vocab.sh); looked in:" + list);
}

}  // namespace rwkv
