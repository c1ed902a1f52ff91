// rwkv-cli tokenize / detokenize: text to World token ids and back.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iterator>

#include "commands.h"
#include "common.h"
#include "sampling_options.h"

namespace cli {

Runner add_tokenize(CLI::App& root) {
    auto* cmd = root.add_subcommand("tokenize", "Print the token ids of a text as a JSON array");
    struct Opts {
        RuntimeOptions rt;
        std::string text, file;
    };
    auto o = std::make_shared<Opts>();
    o->rt.add_vocab_to(*cmd);
    auto* group = cmd->add_option_group("Input", "Exactly one of --text and -f");
    group->add_option("--text", o->text, "The text");
    group->add_option("-f,--file", o->file, "A file holding the text (all of its bytes)")->check(CLI::ExistingFile);
    group->require_option(1);
    return [o] {
        std::string text = o->text;
        if (!o->file.empty()) {
            std::ifstream f(o->file, std::ios::binary);
            if (!f) throw std::runtime_error(o->file + ": cannot open");
            text.assign(std::istreambuf_iterator<char>(f), {});
        }
        TokenizerPtr tok = o->rt.load_tokenizer();
        size_t n = 0;
        std::vector<int32_t> ids(text.size());
        rwkv::check(rwkv_tokenizer_encode(tok.get(), text.data(), text.size(), ids.data(), ids.size(), &n));
        ids.resize(n);
        std::printf("%s\n", nlohmann::json(ids).dump().c_str());
        return 0;
    };
}

Runner add_detokenize(CLI::App& root) {
    auto* cmd = root.add_subcommand("detokenize", "Print the text of a list of token ids");
    struct Opts {
        RuntimeOptions rt;
        std::string ids, file;
        bool raw = false;
    };
    auto o = std::make_shared<Opts>();
    o->rt.add_vocab_to(*cmd);
    auto* group = cmd->add_option_group("Input", "Exactly one of --ids and -f");
    group->add_option("--ids", o->ids, "Token ids, comma separated");
    group
        ->add_option("-f,--file", o->file,
                     "A file of token ids (separated by commas, spaces or newlines, or a JSON array)")
        ->check(CLI::ExistingFile);
    group->require_option(1);
    cmd->add_flag("--raw", o->raw, "Print the bytes exactly, without the final newline");
    return [o] {
        std::vector<int32_t> ids = o->file.empty() ? parse_id_list(o->ids) : read_id_file(o->file);
        TokenizerPtr tok = o->rt.load_tokenizer();
        size_t n = 0;
        rwkv::check(rwkv_tokenizer_decode(tok.get(), ids.data(), ids.size(), nullptr, 0, &n));
        std::string text(n, '\0');
        rwkv::check(rwkv_tokenizer_decode(tok.get(), ids.data(), ids.size(), text.data(), text.size(), &n));
        std::fwrite(text.data(), 1, text.size(), stdout);
        if (!o->raw) std::fputc('\n', stdout);
        return 0;
    };
}

}  // namespace cli
