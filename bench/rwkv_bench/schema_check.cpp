// rwkv-bench-schema-check: validates a JSON document against a JSON Schema written with the small subset that
// bench/schema.json uses: type (a name or a list), required, properties, additionalProperties (true/false),
// items, enum, minimum, minItems, plus the annotations $schema, $id, title, description, $comment. Any other
// keyword is an error, so that a schema never silently checks less than it says.
//
//   rwkv-bench-schema-check SCHEMA.json DOC.json   (DOC "-": standard input)
//   rwkv-bench-schema-check --self-test            (the validator's own tests)
//
// Exit status: 0 valid, 1 invalid (every violation printed with its JSON pointer), 2 usage or unreadable input.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <set>
#include <string>
#include <vector>

namespace {

using Json = nlohmann::json;

bool has_type(const Json& v, const std::string& t) {
    if (t == "null") return v.is_null();
    if (t == "boolean") return v.is_boolean();
    if (t == "object") return v.is_object();
    if (t == "array") return v.is_array();
    if (t == "string") return v.is_string();
    if (t == "number") return v.is_number();
    if (t == "integer") {
        if (v.is_number_integer()) return true;
        if (!v.is_number_float()) return false;
        const double d = v.get<double>();
        return d == double(static_cast<long long>(d));
    }
    throw std::runtime_error("unknown type name '" + t + "' in the schema");
}

std::string pointer_child(const std::string& at, const std::string& key) {
    std::string k;
    for (char c : key) k += c == '~' ? "~0" : c == '/' ? "~1" : std::string(1, c);
    return at + "/" + k;
}

void validate(const Json& schema, const Json& v, const std::string& at, std::vector<std::string>& errors) {
    static const std::set<std::string> kKnown = {
        "type",    "required", "properties", "additionalProperties", "items",   "enum", "minimum", "minItems",
        "$schema", "$id",      "title",      "description",          "$comment"};
    if (!schema.is_object()) throw std::runtime_error("schema at " + at + " is not an object");
    for (auto it = schema.begin(); it != schema.end(); ++it)
        if (!kKnown.count(it.key()))
            throw std::runtime_error("schema keyword '" + it.key() + "' (at " + at + ") is not supported");
    const std::string where = at.empty() ? "/" : at;

    if (schema.contains("type")) {
        const Json& t = schema["type"];
        std::vector<std::string> types;
        if (t.is_string())
            types.push_back(t.get<std::string>());
        else
            for (const Json& x : t) types.push_back(x.get<std::string>());
        bool ok = false;
        for (const std::string& name : types) ok |= has_type(v, name);
        if (!ok) {
            errors.push_back(where + ": " + v.dump() + " is not of type " + t.dump());
            return;  // the other keywords would only repeat the complaint
        }
    }
    if (schema.contains("enum")) {
        bool found = false;
        for (const Json& x : schema["enum"]) found |= x == v;
        if (!found) errors.push_back(where + ": " + v.dump() + " is not one of " + schema["enum"].dump());
    }
    if (schema.contains("minimum") && v.is_number() && v.get<double>() < schema["minimum"].get<double>())
        errors.push_back(where + ": " + v.dump() + " is less than the minimum " + schema["minimum"].dump());
    if (v.is_object()) {
        if (schema.contains("required"))
            for (const Json& k : schema["required"])
                if (!v.contains(k.get<std::string>()))
                    errors.push_back(where + ": the required property \"" + k.get<std::string>() + "\" is missing");
        const Json props = schema.value("properties", Json::object());
        for (auto it = v.begin(); it != v.end(); ++it) {
            if (props.contains(it.key()))
                validate(props[it.key()], it.value(), pointer_child(at, it.key()), errors);
            else if (schema.contains("additionalProperties") && schema["additionalProperties"] == false)
                errors.push_back(where + ": the property \"" + it.key() + "\" is not allowed");
        }
    }
    if (v.is_array()) {
        if (schema.contains("minItems") && v.size() < schema["minItems"].get<size_t>())
            errors.push_back(where + ": " + std::to_string(v.size()) + " items, fewer than " +
                             schema["minItems"].dump());
        if (schema.contains("items"))
            for (size_t i = 0; i < v.size(); i++) validate(schema["items"], v[i], at + "/" + std::to_string(i), errors);
    }
}

std::vector<std::string> check(const Json& schema, const Json& doc) {
    std::vector<std::string> errors;
    validate(schema, doc, "", errors);
    return errors;
}

int self_test() {
    const Json schema = Json::parse(R"({
      "type": "array", "minItems": 1,
      "items": {
        "type": "object", "additionalProperties": false, "required": ["name", "n", "ratio", "mode"],
        "properties": {
          "name": {"type": "string"},
          "n": {"type": "integer", "minimum": 1},
          "ratio": {"type": ["number", "null"], "minimum": 0},
          "mode": {"enum": ["a", "b"]},
          "list": {"type": "array", "items": {"type": "number"}}
        }
      }
    })");
    struct Case {
        const char* doc;
        size_t n_errors;
    };
    const Case cases[] = {
        {R"([{"name": "x", "n": 1, "ratio": 0.5, "mode": "a", "list": [1, 2.5]}])", 0},
        {R"([{"name": "x", "n": 2.0, "ratio": null, "mode": "b"}])", 0},               // 2.0 is an integer
        {R"([])", 1},                                                                  // minItems
        {R"({"name": "x"})", 1},                                                       // not an array
        {R"([{"n": 1, "ratio": 0, "mode": "a"}])", 1},                                 // required
        {R"([{"name": 3, "n": 1, "ratio": 0, "mode": "a"}])", 1},                      // type
        {R"([{"name": "x", "n": 0, "ratio": 0, "mode": "a"}])", 1},                    // minimum
        {R"([{"name": "x", "n": 1.5, "ratio": 0, "mode": "a"}])", 1},                  // integer
        {R"([{"name": "x", "n": 1, "ratio": -1, "mode": "a"}])", 1},                   // minimum on a nullable number
        {R"([{"name": "x", "n": 1, "ratio": "0", "mode": "a"}])", 1},                  // type list
        {R"([{"name": "x", "n": 1, "ratio": 0, "mode": "c"}])", 1},                    // enum
        {R"([{"name": "x", "n": 1, "ratio": 0, "mode": "a", "extra": 1}])", 1},        // additionalProperties
        {R"([{"name": "x", "n": 1, "ratio": 0, "mode": "a", "list": [1, "2"]}])", 1},  // items
    };
    int failed = 0;
    for (const Case& c : cases) {
        std::vector<std::string> errors = check(schema, Json::parse(c.doc));
        if (errors.size() != c.n_errors) {
            std::fprintf(stderr, "FAIL: %s: %zu error(s), expected %zu\n", c.doc, errors.size(), c.n_errors);
            for (const std::string& e : errors) std::fprintf(stderr, "  %s\n", e.c_str());
            failed++;
        }
    }
    // A keyword the validator does not implement must be refused, not ignored.
    try {
        check(Json::parse(R"({"type": "string", "maxLength": 3})"), Json("abcd"));
        std::fprintf(stderr, "FAIL: an unsupported keyword was accepted\n");
        failed++;
    } catch (const std::runtime_error&) {
    }
    std::printf("%s: %d failure(s) in %zu cases\n", failed ? "FAILED" : "ok", failed, std::size(cases) + 1);
    return failed ? 1 : 0;
}

Json read_json(const std::string& path) {
    std::string text;
    if (path == "-") {
        text.assign(std::istreambuf_iterator<char>(std::cin), {});
    } else {
        std::ifstream f(path);
        if (!f) throw std::runtime_error(path + ": cannot open");
        text.assign(std::istreambuf_iterator<char>(f), {});
    }
    try {
        return Json::parse(text);
    } catch (const Json::parse_error& e) {
        throw std::runtime_error((path == "-" ? std::string("stdin") : path) + ": not JSON: " + e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::string(argv[1]) == "--self-test") return self_test();
    if (argc != 3) {
        std::fprintf(stderr, "usage: %s SCHEMA.json DOC.json|-\n       %s --self-test\n", argv[0], argv[0]);
        return 2;
    }
    try {
        Json schema = read_json(argv[1]), doc = read_json(argv[2]);
        std::vector<std::string> errors = check(schema, doc);
        for (const std::string& e : errors) std::fprintf(stderr, "invalid: %s\n", e.c_str());
        if (!errors.empty()) {
            std::fprintf(stderr, "%s: %zu violation(s) of %s\n", argv[2], errors.size(), argv[1]);
            return 1;
        }
        std::printf("%s: valid against %s\n", argv[2], argv[1]);
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
