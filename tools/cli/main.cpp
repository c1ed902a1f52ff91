// rwkv-cli: the command-line front end of librwkv. Uses only the public API.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <map>

#include "commands.h"
#include "common.h"

int main(int argc, char** argv) {
    // Messages go to stderr so that stdout carries only what a command produces (ids, text, JSON).
    spdlog::set_default_logger(spdlog::stderr_color_mt("rwkv-cli"));
    spdlog::set_pattern("%^%l%$: %v");
    cli::install_log_bridge();

    CLI::App app{"rwkv-cli: run RWKV-7 language models"};
    app.require_subcommand(1);
    app.set_version_flag("--version", std::string("librwkv ") + rwkv_version());
    std::map<CLI::App*, cli::Runner> runners;
    for (auto add : {cli::add_info, cli::add_logits, cli::add_tokenize, cli::add_detokenize, cli::add_generate,
                     cli::add_chat, cli::add_convert}) {
        size_t before = app.get_subcommands({}).size();
        cli::Runner run = add(app);
        runners[app.get_subcommands({})[before]] = std::move(run);
    }

    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        app.exit(e);
        return 2;  // usage error, as getopt-style tools do
    }
    try {
        for (auto& [sub, run] : runners)
            if (sub->parsed()) return run();
    } catch (const rwkv::Error& e) {
        spdlog::error("{}", e.what());
        return 1;
    } catch (const std::exception& e) {
        spdlog::error("{}", e.what());
        return 1;
    }
    return 1;
}
