#include "chat_session.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cfloat>
#include <climits>
#include <cmath>
#include <cstring>
#include <exception>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <utility>

#include "sampling_options.h"

namespace cli::chat {

using json = nlohmann::ordered_json;

namespace {

const char* stop_name(rwkv_stop_reason r) {
    switch (r) {
        case RWKV_STOP_LENGTH:
            return "length";
        case RWKV_STOP_TOKEN:
            return "token";
        case RWKV_STOP_STRING:
            return "string";
        case RWKV_STOP_CANCELLED:
            return "cancelled";
    }
    return "string";
}

rwkv_stop_reason stop_from_name(const std::string& s) {
    if (s == "length") return RWKV_STOP_LENGTH;
    if (s == "token") return RWKV_STOP_TOKEN;
    if (s == "string") return RWKV_STOP_STRING;
    if (s == "cancelled") return RWKV_STOP_CANCELLED;
    throw std::runtime_error("unknown stop reason '" + s + "'");
}

const char* dtype_name(rwkv_dtype t) {
    return t == RWKV_DTYPE_F32 ? "f32" : t == RWKV_DTYPE_F16 ? "f16" : "bf16";
}

// The model numbers a conversation must match (the state's shape and the parameter count).
std::vector<std::pair<const char*, int64_t>> fingerprint(const rwkv_model_info& i) {
    return {{"n_layer", i.n_layer}, {"n_embd", i.n_embd}, {"n_head", i.n_head},    {"head_size", i.head_size},
            {"n_vocab", i.n_vocab}, {"n_ffn", i.n_ffn},   {"d_decay", i.d_decay},  {"d_aaa", i.d_aaa},
            {"d_value", i.d_value}, {"d_gate", i.d_gate}, {"n_params", i.n_params}};
}

json settings_to_json(const Settings& s) {
    return {{"temperature", s.sampling.temperature},
            {"top_p", s.sampling.top_p},
            {"top_k", s.sampling.top_k},
            {"min_p", s.sampling.min_p},
            {"presence_penalty", s.sampling.presence_penalty},
            {"frequency_penalty", s.sampling.frequency_penalty},
            {"penalty_decay", s.sampling.penalty_decay},
            {"seed", s.sampling.seed},
            {"max_tokens", s.max_tokens},
            {"think", s.think},
            {"show_think", s.show_think},
            {"stats", s.stats}};
}

// Checked reads of the header's numbers. nlohmann's get<T>() converts a float, or an integer T cannot hold, with a
// plain cast, which is undefined behaviour for out-of-range values (found by fuzz_chat: a seed of 6.8e36).
template <class T>
T integer_at(const json& j, const char* key) {
    const json& v = j.at(key);
    if (!v.is_number_integer()) throw std::runtime_error(std::string(key) + " must be an integer");
    if (v.is_number_unsigned() ? !std::in_range<T>(v.get<uint64_t>()) : !std::in_range<T>(v.get<int64_t>()))
        throw std::runtime_error(std::string(key) + " is out of range: " + v.dump());
    return v.is_number_unsigned() ? T(v.get<uint64_t>()) : T(v.get<int64_t>());
}

float float_at(const json& j, const char* key) {
    const json& v = j.at(key);
    if (!v.is_number()) throw std::runtime_error(std::string(key) + " must be a number");
    const double d = v.get<double>();
    if (!(std::fabs(d) <= double(FLT_MAX)))
        throw std::runtime_error(std::string(key) + " is out of range: " + v.dump());
    return float(d);
}

Settings settings_from_json(const json& j) {
    Settings s;
    s.sampling.temperature = float_at(j, "temperature");
    s.sampling.top_p = float_at(j, "top_p");
    s.sampling.top_k = integer_at<int>(j, "top_k");
    s.sampling.min_p = float_at(j, "min_p");
    s.sampling.presence_penalty = float_at(j, "presence_penalty");
    s.sampling.frequency_penalty = float_at(j, "frequency_penalty");
    s.sampling.penalty_decay = float_at(j, "penalty_decay");
    s.sampling.seed = integer_at<uint64_t>(j, "seed");
    s.max_tokens = integer_at<int>(j, "max_tokens");
    s.think = j.at("think").get<bool>();
    s.show_think = j.at("show_think").get<bool>();
    s.stats = j.at("stats").get<bool>();
    if (std::string err = check_sampling(s.sampling); !err.empty()) throw std::runtime_error(err);
    if (s.max_tokens < -1) throw std::runtime_error("max_tokens must be >= -1");
    return s;
}

void put_u32(std::string& out, uint32_t v) {
    for (int i = 0; i < 4; i++) out += char((v >> (8 * i)) & 0xff);
}
void put_u64(std::string& out, uint64_t v) {
    for (int i = 0; i < 8; i++) out += char((v >> (8 * i)) & 0xff);
}
uint64_t get_le(const std::string& in, size_t at, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | static_cast<unsigned char>(in[at + size_t(i)]);
    return v;
}

std::string serialize_state(const rwkv_state* s) {
    size_t n = 0;
    rwkv::check(rwkv_state_serialize(s, nullptr, 0, &n));
    std::string bytes(n, '\0');
    rwkv::check(rwkv_state_serialize(s, bytes.data(), bytes.size(), &n));
    return bytes;
}

bool is_zero_state(const rwkv_state* s) {
    std::vector<float> data(rwkv_state_size(s));
    rwkv::check(rwkv_state_get_data(s, data.data(), data.size()));
    for (float v : data)
        if (v != 0.0f) return false;
    return true;
}

// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync, rename.
void write_atomically(const std::string& path, const std::string& bytes) {
    std::string tmpl = path + ".tmp.XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd < 0) throw std::runtime_error(path + ": cannot write (" + std::strerror(errno) + ")");
    const mode_t mask = ::umask(0);  // mkstemp creates 0600; give the file the usual permissions
    ::umask(mask);
    ::fchmod(fd, 0666 & ~mask);
    size_t done = 0;
    bool ok = true;
    while (ok && done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0)
            ok = false;
        else
            done += size_t(n);
    }
    int err = ok ? 0 : errno;
    if (ok && ::fsync(fd) != 0) ok = false, err = errno;
    if (::close(fd) != 0 && ok) ok = false, err = errno;
    if (ok && std::rename(tmpl.c_str(), path.c_str()) != 0) ok = false, err = errno;
    if (!ok) {
        ::unlink(tmpl.c_str());
        throw std::runtime_error(path + ": cannot write (" + std::strerror(err) + ")");
    }
    // Make the rename durable too (best effort).
    size_t slash = path.find_last_of('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

}  // namespace

uint32_t crc32(const void* data, size_t n, uint32_t crc) {
    static const std::array<uint32_t, 256> table = [] {
        std::array<uint32_t, 256> t{};
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[i] = c;
        }
        return t;
    }();
    const auto* p = static_cast<const unsigned char*>(data);
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

// ---- session ---------------------------------------------------------------------------------------------------

struct ConversationFile {
    Settings settings;
    std::string system;
    bool needs_separator = false;
    std::vector<Turn> transcript;
    StatePtr state, undo, initial;  // undo and initial may be null
    SamplerPtr sampler;
    bool undo_needs_separator = false;
};

Session::Session(const rwkv_model* model, rwkv_context* ctx, const rwkv_tokenizer* tokenizer, std::string model_name,
                 const Settings& settings)
    : model_(model), ctx_(ctx), tokenizer_(tokenizer), model_name_(std::move(model_name)), settings_(settings) {
    rwkv::check(rwkv_model_get_info(model, &info_));
    if (std::string err = check_sampling(settings.sampling); !err.empty()) throw std::runtime_error(err);
    rwkv_sampler* s = nullptr;
    rwkv::check(rwkv_sampler_init(&settings.sampling, info_.n_vocab, &s));
    sampler_.reset(s);
    state_ = new_state();
    initial_ = new_state();
}

Session::~Session() = default;

StatePtr Session::new_state() const {
    rwkv_state* s = nullptr;
    rwkv::check(rwkv_state_init(model_, &s));
    return StatePtr(s);
}

std::vector<int32_t> Session::encode(const std::string& text) const {
    std::vector<int32_t> ids(text.size());
    size_t n = 0;
    rwkv::check(rwkv_tokenizer_encode(tokenizer_, text.data(), text.size(), ids.data(), ids.size(), &n));
    ids.resize(n);
    return ids;
}

void Session::start(const std::string& state_file, const std::string& system) {
    if (!state_file.empty()) load_initial_state(state_.get(), state_file);
    if (!system.empty()) {
        system_ = clean_text(system);
        const std::string text = system_text(system);
        std::vector<int32_t> tokens = encode(text);
        if (on_feed) on_feed(text, tokens);
        rwkv::check(rwkv_eval(ctx_, state_.get(), tokens.data(), tokens.size(), RWKV_LOGITS_NONE, nullptr, 0));
    }
    rwkv::check(rwkv_state_copy(initial_.get(), state_.get()));
    initial_zero_ = is_zero_state(initial_.get());
    needs_separator_ = false;
    transcript_.clear();
    snapshots_.clear();
}

rwkv_generate_result Session::send(const std::string& message, const Stream& stream, const volatile int* cancel) {
    if (message.empty()) throw std::runtime_error("empty message");
    Snapshot snap{new_state(), needs_separator_};
    rwkv::check(rwkv_state_copy(snap.state.get(), state_.get()));

    const std::string text = turn_text(message, settings_.think, needs_separator_);
    const std::vector<int32_t> tokens = encode(text);
    if (on_feed) on_feed(text, tokens);

    static const char* const kStopStrings[] = {"\n\n"};
    static const int32_t kStopTokens[] = {0};
    rwkv_generate_params gp = rwkv_generate_default_params();
    gp.max_tokens = settings_.max_tokens < 0 ? INT_MAX : settings_.max_tokens;
    gp.stop_strings = kStopStrings;
    gp.n_stop_strings = 1;
    gp.stop_tokens = kStopTokens;
    gp.n_stop_tokens = 1;
    gp.cancel = cancel;

    struct Sink {
        const Stream* stream;
        std::string reply;
        std::exception_ptr error;
    } sink{&stream, {}, nullptr};
    auto callback = [](int32_t, const char* piece, size_t n, void* user) -> int {
        auto* k = static_cast<Sink*>(user);
        k->reply.append(piece, n);
        try {
            if (*k->stream && n > 0) (*k->stream)(std::string_view(piece, n));
        } catch (...) {
            k->error = std::current_exception();
            return 1;
        }
        return 0;
    };
    rwkv_generate_result r{};
    rwkv::check(rwkv_sampler_reset(sampler_.get()));  // penalties count this reply's tokens only
    rwkv_status st = rwkv_generate(ctx_, state_.get(), tokenizer_, sampler_.get(), tokens.data(), tokens.size(), &gp,
                                   callback, &sink, &r);
    if (st != RWKV_STATUS_OK || sink.error) {
        const std::string message_text = st != RWKV_STATUS_OK ? rwkv_last_error_message() : "";
        rwkv_state_copy(state_.get(), snap.state.get());
        if (sink.error) std::rethrow_exception(sink.error);
        throw rwkv::Error(st, message_text);
    }
    // Every sampled token was fed before the stop check: after a "\n\n" stop the state already ends with the turn
    // separator; any other ending (length, token 0 which is not fed, Ctrl-C) needs "\n\n" before the next turn.
    needs_separator_ = r.stop_reason != RWKV_STOP_STRING;
    transcript_.push_back({message, std::move(sink.reply), settings_.think, r.stop_reason});
    if (max_undo_ > 0) {
        snapshots_.push_back(std::move(snap));
        while (snapshots_.size() > max_undo_) snapshots_.pop_front();
    }
    return r;
}

bool Session::undo() {
    if (snapshots_.empty() || transcript_.empty()) return false;
    rwkv::check(rwkv_state_copy(state_.get(), snapshots_.back().state.get()));
    needs_separator_ = snapshots_.back().needs_separator;
    snapshots_.pop_back();
    transcript_.pop_back();
    return true;
}

bool Session::regen(const Stream& stream, const volatile int* cancel, rwkv_generate_result* result) {
    if (snapshots_.empty() || transcript_.empty()) return false;
    // Keep what is needed to put everything back if the new reply fails.
    StatePtr after = new_state();
    rwkv::check(rwkv_state_copy(after.get(), state_.get()));
    const bool after_sep = needs_separator_;
    Turn last = transcript_.back();
    Snapshot before{new_state(), snapshots_.back().needs_separator};
    rwkv::check(rwkv_state_copy(before.state.get(), snapshots_.back().state.get()));
    undo();
    try {
        rwkv_generate_result r = send(last.user, stream, cancel);
        if (result) *result = r;
    } catch (...) {
        rwkv_state_copy(state_.get(), after.get());
        needs_separator_ = after_sep;
        transcript_.push_back(std::move(last));
        snapshots_.push_back(std::move(before));
        throw;
    }
    return true;
}

void Session::reset() {
    rwkv::check(rwkv_state_copy(state_.get(), initial_.get()));
    needs_separator_ = false;
    transcript_.clear();
    snapshots_.clear();
}

void Session::set_settings(const Settings& settings) {
    if (std::string err = check_sampling(settings.sampling); !err.empty()) throw std::runtime_error(err);
    if (settings.max_tokens < -1) throw std::runtime_error("max tokens must be >= -1 (-1 = no limit)");
    rwkv::check(rwkv_sampler_set_params(sampler_.get(), &settings.sampling));
    settings_ = settings;
}

void Session::save(const std::string& path) const {
    json model = {{"name", model_name_}, {"weight_dtype", dtype_name(info_.weight_dtype)}};
    for (const auto& [key, value] : fingerprint(info_)) model[key] = value;
    json transcript = json::array();
    for (const Turn& t : transcript_)
        transcript.push_back({{"user", t.user}, {"reply", t.reply}, {"think", t.think}, {"stop", stop_name(t.stop)}});

    std::vector<std::pair<std::string, std::string>> blobs;
    blobs.emplace_back("state", serialize_state(state_.get()));
    if (!snapshots_.empty()) blobs.emplace_back("undo", serialize_state(snapshots_.back().state.get()));
    if (!initial_zero_) blobs.emplace_back("initial", serialize_state(initial_.get()));
    json blob_list = json::array();
    for (const auto& [name, bytes] : blobs) blob_list.push_back({{"name", name}, {"bytes", bytes.size()}});

    json j = {
        {"format", "rwkv-cli conversation"},
        {"model", model},
        {"settings", settings_to_json(settings_)},
        {"system", system_},
        {"needs_separator", needs_separator_},
        {"transcript", transcript},
        {"undo", snapshots_.empty() ? json(nullptr) : json{{"needs_separator", snapshots_.back().needs_separator}}},
        {"blobs", blob_list}};
    const std::string header = j.dump(1, ' ', false, json::error_handler_t::replace);

    std::string out(kConversationMagic, sizeof kConversationMagic);
    put_u32(out, kConversationVersion);
    put_u64(out, header.size());
    out += header;
    for (const auto& blob : blobs) out += blob.second;
    put_u32(out, crc32(out.data(), out.size()));
    write_atomically(path, out);
}

std::string Session::load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw std::runtime_error(path + ": cannot open (" + std::strerror(errno) + ")");
    const std::string bytes((std::istreambuf_iterator<char>(f)), {});
    auto fail = [&](const std::string& why) -> void { throw std::runtime_error(path + ": " + why); };

    constexpr size_t kFixed = 8 + 4 + 8;  // magic, version, header length
    if (bytes.size() < 8 || bytes.compare(0, 8, kConversationMagic, 8) != 0)
        fail("not a conversation file (it does not start with RWKVCHAT)");
    if (bytes.size() < kFixed + 4) fail("truncated (" + std::to_string(bytes.size()) + " bytes)");
    const uint32_t version = uint32_t(get_le(bytes, 8, 4));
    if (version != kConversationVersion)
        fail("unsupported conversation file version " + std::to_string(version) + " (this build reads " +
             std::to_string(kConversationVersion) + ")");
    const uint64_t header_len = get_le(bytes, 12, 8);
    if (header_len > bytes.size() - kFixed - 4)
        fail("truncated: the header says " + std::to_string(header_len) + " bytes, the file has " +
             std::to_string(bytes.size()));

    json j;
    try {
        j = json::parse(bytes.begin() + kFixed, bytes.begin() + kFixed + std::ptrdiff_t(header_len));
    } catch (const std::exception& e) {
        fail(std::string("corrupt header: ") + e.what());
    }

    ConversationFile c;
    std::string warnings;
    std::vector<std::pair<std::string, uint64_t>> blob_sizes;
    try {
        uint64_t total = 0;
        for (const json& b : j.at("blobs")) {
            blob_sizes.emplace_back(b.at("name").get<std::string>(), integer_at<uint64_t>(b, "bytes"));
            if (blob_sizes.back().second > bytes.size()) fail("truncated: a state is larger than the file");
            total += blob_sizes.back().second;
        }
        const uint64_t expected = kFixed + header_len + total + 4;
        if (bytes.size() < expected)
            fail("truncated: " + std::to_string(bytes.size()) + " bytes, expected " + std::to_string(expected));
        if (bytes.size() > expected)
            fail("corrupt: " + std::to_string(bytes.size() - expected) + " unexpected bytes at the end");
        const uint32_t stored = uint32_t(get_le(bytes, bytes.size() - 4, 4));
        if (crc32(bytes.data(), bytes.size() - 4) != stored) fail("corrupt: checksum mismatch");

        // The model must be the one the conversation was held with.
        const json& m = j.at("model");
        for (const auto& [key, value] : fingerprint(info_)) {
            const int64_t saved = integer_at<int64_t>(m, key);
            if (saved != value)
                fail("saved with another model (" + std::string(key) + " " + std::to_string(saved) +
                     "; the loaded model has " + std::to_string(value) + ")");
        }
        const std::string saved_name = m.value("name", "");
        if (saved_name != model_name_)
            warnings +=
                "the conversation was saved with model '" + saved_name + "' (same shape), now '" + model_name_ + "'";

        c.settings = settings_from_json(j.at("settings"));
        c.system = j.at("system").get<std::string>();
        c.needs_separator = j.at("needs_separator").get<bool>();
        for (const json& t : j.at("transcript"))
            c.transcript.push_back({t.at("user").get<std::string>(), t.at("reply").get<std::string>(),
                                    t.at("think").get<bool>(), stop_from_name(t.at("stop").get<std::string>())});
        const json& undo = j.at("undo");
        if (!undo.is_null()) c.undo_needs_separator = undo.at("needs_separator").get<bool>();

        size_t at = kFixed + header_len;
        for (const auto& [name, size] : blob_sizes) {
            StatePtr s = new_state();
            if (rwkv_state_deserialize(s.get(), bytes.data() + at, size) != RWKV_STATUS_OK)
                fail("state '" + name + "': " + rwkv_last_error_message());
            at += size;
            StatePtr* slot = name == "state"     ? &c.state
                             : name == "undo"    ? &c.undo
                             : name == "initial" ? &c.initial
                                                 : nullptr;
            if (!slot) fail("unknown state '" + name + "'");
            if (*slot) fail("state '" + name + "' appears twice");
            *slot = std::move(s);
        }
        if (!c.state) fail("no conversation state");
        if (undo.is_null() != !c.undo) fail("corrupt: the undo snapshot does not match the header");
        if (c.undo && c.transcript.empty()) fail("corrupt: an undo snapshot without a turn");
    } catch (const std::runtime_error& e) {
        const std::string what = e.what();
        if (what.rfind(path + ": ", 0) == 0) throw;
        fail("corrupt header: " + what);
    } catch (const std::exception& e) {  // nlohmann type and key errors
        fail(std::string("corrupt header: ") + e.what());
    }
    // A fresh sampler: its random stream restarts from the saved seed.
    rwkv_sampler* sampler = nullptr;
    rwkv::check(rwkv_sampler_init(&c.settings.sampling, info_.n_vocab, &sampler));
    c.sampler.reset(sampler);
    commit(std::move(c));
    return warnings;
}

void Session::commit(ConversationFile&& c) {
    settings_ = c.settings;
    sampler_ = std::move(c.sampler);
    system_ = std::move(c.system);
    needs_separator_ = c.needs_separator;
    transcript_ = std::move(c.transcript);
    state_ = std::move(c.state);
    snapshots_.clear();
    if (c.undo) snapshots_.push_back({std::move(c.undo), c.undo_needs_separator});
    if (c.initial) {
        initial_ = std::move(c.initial);
        initial_zero_ = false;
    } else {
        rwkv_state_reset(initial_.get());
        initial_zero_ = true;
    }
}

}  // namespace cli::chat
