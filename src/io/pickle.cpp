#include "io/pickle.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <deque>
#include <unordered_map>

#include "common/error.h"
#include "io/checked.h"

namespace rwkv {

namespace {

// The opcodes understood (Lib/pickletools.py names). Anything else is rejected by byte value.
enum Op : uint8_t {
    kMark = '(',
    kStop = '.',
    kPop = '0',
    kPopMark = '1',
    kDup = '2',
    kBinFloat = 'G',
    kBinInt = 'J',
    kBinInt1 = 'K',
    kBinInt2 = 'M',
    kNone = 'N',
    kBinPersId = 'Q',
    kReduce = 'R',
    kBinUnicode = 'X',
    kBinBytes = 'B',
    kShortBinBytes = 'C',
    kEmptyList = ']',
    kAppend = 'a',
    kBuild = 'b',
    kGlobal = 'c',
    kAppends = 'e',
    kBinGet = 'h',
    kLongBinGet = 'j',
    kBinPut = 'q',
    kLongBinPut = 'r',
    kSetItem = 's',
    kTuple = 't',
    kSetItems = 'u',
    kEmptyDict = '}',
    kEmptyTuple = ')',
    kProto = 0x80,
    kTuple1 = 0x85,
    kTuple2 = 0x86,
    kTuple3 = 0x87,
    kNewTrue = 0x88,
    kNewFalse = 0x89,
    kLong1 = 0x8a,
    kLong4 = 0x8b,
    kShortBinUnicode = 0x8c,
    kBinUnicode8 = 0x8d,
    kBinBytes8 = 0x8e,
    kStackGlobal = 0x93,
    kMemoize = 0x94,
    kFrame = 0x95,
};

// The only callables a torch state dict needs.
enum class Callable { OrderedDict, RebuildTensorV2, RebuildParameter, FloatStorage, HalfStorage, BFloat16Storage };

struct Global {
    const char* module;
    const char* name;
    Callable callable;
};
constexpr Global kAllowedGlobals[] = {
    {"collections", "OrderedDict", Callable::OrderedDict},
    {"torch._utils", "_rebuild_tensor_v2", Callable::RebuildTensorV2},
    {"torch._utils", "_rebuild_parameter", Callable::RebuildParameter},  // tensors saved as nn.Parameter
    {"torch", "FloatStorage", Callable::FloatStorage},
    {"torch", "HalfStorage", Callable::HalfStorage},
    {"torch", "BFloat16Storage", Callable::BFloat16Storage},
};

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::None:
            return "None";
        case Kind::Bool:
            return "bool";
        case Kind::Int:
            return "int";
        case Kind::Float:
            return "float";
        case Kind::Str:
            return "str";
        case Kind::Bytes:
            return "bytes";
        case Kind::Tuple:
            return "tuple";
        case Kind::List:
            return "list";
        case Kind::Dict:
            return "dict";
        case Kind::Global:
            return "global";
        case Kind::Storage:
            return "storage";
        case Kind::Tensor:
            return "tensor";
    }
    return "?";
}

// Objects live in an arena owned by the machine and refer to each other by raw pointer, so nothing is ever
// destroyed recursively (a hostile pickle can build cycles or very deep chains through the memo).
struct Value {
    Kind kind = Kind::None;
    Callable callable = Callable::OrderedDict;  // Global
    DType dtype = DType::F32;                   // Storage
    uint32_t depth = 0;                         // container nesting below this value
    int64_t i = 0;                              // Int, Bool; Storage numel; Tensor index into tensors_
    double f = 0;                               // Float
    std::string s;                              // Str, Bytes; Storage key
    std::vector<Value*> items;                  // Tuple, List; Dict as key, value, key, value, ...
};

class Machine {
  public:
    Machine(const uint8_t* data, size_t size, const std::string& where) : data_(data), size_(size), where_(where) {}

    std::vector<PickleTensor> run();

  private:
    [[noreturn]] void fail(const std::string& what) const {
        throw_format(where_ + ": " + what + " at byte " + std::to_string(op_pos_));
    }

    // ---- reading the opcode stream
    const uint8_t* take(size_t n) {
        if (n > size_ - pos_) fail("pickle ends inside an opcode argument (truncated data.pkl)");
        const uint8_t* p = data_ + pos_;
        pos_ += n;
        return p;
    }
    uint8_t u8() { return *take(1); }
    uint64_t le(size_t n) {
        const uint8_t* p = take(n);
        uint64_t v = 0;
        for (size_t k = 0; k < n; k++) v |= static_cast<uint64_t>(p[k]) << (8 * k);
        return v;
    }
    std::string bytes(uint64_t n) {
        if (n > PickleLimits::kMaxString) {
            fail("string of " + std::to_string(n) + " bytes exceeds the limit of " +
                 std::to_string(PickleLimits::kMaxString));
        }
        const uint8_t* p = take(static_cast<size_t>(n));
        return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
    }
    std::string line() {  // GLOBAL arguments: text up to '\n'
        constexpr size_t kMaxLine = 256;
        const uint8_t* start = data_ + pos_;
        size_t avail = std::min(size_ - pos_, kMaxLine + 1);
        const void* nl = std::memchr(start, '\n', avail);
        if (!nl) fail("GLOBAL argument is not a newline-terminated name of at most 256 bytes");
        size_t n = static_cast<const uint8_t*>(nl) - start;
        pos_ += n + 1;
        return std::string(reinterpret_cast<const char*>(start), n);
    }
    int64_t signed_le(size_t n) {  // LONG1 / LONG4 payload: two's complement, little-endian
        if (n > 8) fail("integer of " + std::to_string(n) + " bytes does not fit in 64 bits");
        if (n == 0) return 0;
        uint64_t v = le(n);
        if (n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t(0) << (8 * n);  // sign-extend
        return static_cast<int64_t>(v);
    }

    // ---- objects
    Value* make(Kind k) {
        if (arena_.size() >= PickleLimits::kMaxObjects)
            fail("pickle creates more than " + std::to_string(PickleLimits::kMaxObjects) + " objects");
        arena_.emplace_back();
        arena_.back().kind = k;
        return &arena_.back();
    }
    Value* make_int(int64_t v) {
        Value* x = make(Kind::Int);
        x->i = v;
        return x;
    }
    Value* make_str(Kind k, std::string s) {
        Value* x = make(k);
        x->s = std::move(s);
        return x;
    }
    void note_child(Value* container, const Value* child) {
        uint32_t d = child->depth + 1;
        if (d > PickleLimits::kMaxDepth)
            fail("containers nested deeper than " + std::to_string(PickleLimits::kMaxDepth));
        if (d > container->depth) container->depth = d;
    }
    void add_item(Value* container, Value* item) {
        size_t limit = container->kind == Kind::Dict ? 2 * PickleLimits::kMaxItems : PickleLimits::kMaxItems;
        if (container->items.size() >= limit)
            fail(std::string(kind_name(container->kind)) + " with more than " +
                 std::to_string(PickleLimits::kMaxItems) + " items");
        note_child(container, item);
        container->items.push_back(item);
    }
    Value* make_tuple(std::vector<Value*> items) {
        if (items.size() > PickleLimits::kMaxItems)
            fail("tuple with more than " + std::to_string(PickleLimits::kMaxItems) + " items");
        Value* t = make(Kind::Tuple);
        for (Value* v : items) note_child(t, v);
        t->items = std::move(items);
        return t;
    }

    // ---- the stack; MARK frames as in CPython's metastack: popping below the current mark is an underflow
    size_t base() const { return marks_.empty() ? 0 : marks_.back(); }
    void push(Value* v) {
        if (stack_.size() >= PickleLimits::kMaxStack)
            fail("stack deeper than " + std::to_string(PickleLimits::kMaxStack) + " values");
        stack_.push_back(v);
    }
    Value* pop() {
        if (stack_.size() <= base()) fail("stack underflow");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top() {
        if (stack_.size() <= base()) fail("stack underflow");
        return stack_.back();
    }
    std::vector<Value*> pop_mark() {
        if (marks_.empty()) fail("no MARK on the stack");
        size_t b = marks_.back();
        marks_.pop_back();
        std::vector<Value*> items(stack_.begin() + static_cast<ptrdiff_t>(b), stack_.end());
        stack_.resize(b);
        return items;
    }
    Value* expect(Value* v, Kind k, const char* what) {
        if (v->kind != k) fail(std::string(what) + ": expected " + kind_name(k) + ", found " + kind_name(v->kind));
        return v;
    }

    void memo_put(uint64_t index) {
        Value* v = top();
        auto it = memo_.find(index);
        if (it != memo_.end()) {
            it->second = v;
            return;
        }
        if (memo_.size() >= PickleLimits::kMaxMemo)
            fail("memo larger than " + std::to_string(PickleLimits::kMaxMemo) + " entries");
        memo_.emplace(index, v);
    }
    void memo_get(uint64_t index) {
        auto it = memo_.find(index);
        if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " is read before it is written");
        push(it->second);
    }

    void global(const std::string& module, const std::string& name);
    void reduce();
    void persistent_load();
    void build();
    void set_items(Value* dict, const std::vector<Value*>& kv);
    std::vector<PickleTensor> result(Value* top);

    const uint8_t* data_;
    size_t size_;
    std::string where_;
    size_t pos_ = 0;
    size_t op_pos_ = 0;  // offset of the opcode being executed, for messages
    std::deque<Value> arena_;
    std::vector<Value*> stack_;
    std::vector<size_t> marks_;
    std::unordered_map<uint64_t, Value*> memo_;
    std::vector<PickleTensor> tensors_;
};

void Machine::global(const std::string& module, const std::string& name) {
    for (const Global& g : kAllowedGlobals) {
        if (module == g.module && name == g.name) {
            Value* v = make(Kind::Global);
            v->callable = g.callable;
            push(v);
            return;
        }
    }
    std::string full = module + " " + name;
    if (module == "torch" && name.size() > 7 && name.compare(name.size() - 7, 7, "Storage") == 0)
        fail("forbidden pickle global '" + full + "' (unsupported storage type: only Float, Half and BFloat16)");
    fail("forbidden pickle global '" + full + "'");
}

void Machine::reduce() {
    Value* args = expect(pop(), Kind::Tuple, "REDUCE arguments");
    Value* fn = pop();
    if (fn->kind != Kind::Global) fail(std::string("REDUCE on a ") + kind_name(fn->kind) + ", not a callable");
    const std::vector<Value*>& a = args->items;
    switch (fn->callable) {
        case Callable::OrderedDict:
            if (!a.empty()) fail("OrderedDict() called with arguments");
            push(make(Kind::Dict));
            return;
        case Callable::RebuildTensorV2: {
            // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            if (a.size() != 6 && a.size() != 7)
                fail("_rebuild_tensor_v2 called with " + std::to_string(a.size()) + " arguments, expected 6 or 7");
            Value* storage = expect(a[0], Kind::Storage, "_rebuild_tensor_v2 storage");
            Value* offset = expect(a[1], Kind::Int, "_rebuild_tensor_v2 storage_offset");
            Value* size = expect(a[2], Kind::Tuple, "_rebuild_tensor_v2 size");
            Value* stride = expect(a[3], Kind::Tuple, "_rebuild_tensor_v2 stride");
            expect(a[4], Kind::Bool, "_rebuild_tensor_v2 requires_grad");
            if (a[5]->kind != Kind::Dict || !a[5]->items.empty()) fail("_rebuild_tensor_v2 with backward hooks");
            if (size->items.size() != stride->items.size()) {
                fail("_rebuild_tensor_v2 with " + std::to_string(size->items.size()) + " sizes but " +
                     std::to_string(stride->items.size()) + " strides");
            }
            if (size->items.size() > PickleLimits::kMaxDims)
                fail("tensor with " + std::to_string(size->items.size()) + " dimensions");
            if (offset->i < 0) fail("negative storage offset " + std::to_string(offset->i));
            if (tensors_.size() >= PickleLimits::kMaxTensors)
                fail("pickle rebuilds more than " + std::to_string(PickleLimits::kMaxTensors) + " tensors");
            PickleTensor t;
            t.dtype = storage->dtype;
            t.storage_key = storage->s;
            t.storage_numel = storage->i;
            t.offset = offset->i;
            for (size_t d = 0; d < size->items.size(); d++) {
                Value* n = expect(size->items[d], Kind::Int, "tensor size");
                Value* s = expect(stride->items[d], Kind::Int, "tensor stride");
                if (n->i < 0 || s->i < 0) fail("negative tensor size or stride");
                t.shape.push_back(n->i);
                t.stride.push_back(s->i);
            }
            Value* v = make(Kind::Tensor);
            v->i = static_cast<int64_t>(tensors_.size());
            tensors_.push_back(std::move(t));
            push(v);
            return;
        }
        case Callable::RebuildParameter:
            // _rebuild_parameter(data, requires_grad, backward_hooks): the Parameter is just its tensor here.
            if (a.size() != 3)
                fail("_rebuild_parameter called with " + std::to_string(a.size()) + " arguments, expected 3");
            expect(a[0], Kind::Tensor, "_rebuild_parameter data");
            expect(a[1], Kind::Bool, "_rebuild_parameter requires_grad");
            if (a[2]->kind != Kind::Dict || !a[2]->items.empty()) fail("_rebuild_parameter with backward hooks");
            push(a[0]);
            return;
        case Callable::FloatStorage:
        case Callable::HalfStorage:
        case Callable::BFloat16Storage:
            fail("REDUCE calls a storage type, which torch.save never does");
    }
}

// BINPERSID on ('storage', <storage type>, key, location, numel): torch's reference to data/<key>.
void Machine::persistent_load() {
    Value* pid = pop();
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::Str ||
        pid->items[0]->s != "storage") {
        fail("persistent id is not a ('storage', type, key, location, numel) tuple");
    }
    Value* type = expect(pid->items[1], Kind::Global, "storage type");
    Value* key = expect(pid->items[2], Kind::Str, "storage key");
    expect(pid->items[3], Kind::Str, "storage location");
    Value* numel = expect(pid->items[4], Kind::Int, "storage numel");
    Value* v = make(Kind::Storage);
    switch (type->callable) {
        case Callable::FloatStorage:
            v->dtype = DType::F32;
            break;
        case Callable::HalfStorage:
            v->dtype = DType::F16;
            break;
        case Callable::BFloat16Storage:
            v->dtype = DType::BF16;
            break;
        default:
            fail("persistent id names a storage type that is not a storage");
    }
    if (numel->i < 0) fail("negative storage size " + std::to_string(numel->i));
    v->s = key->s;
    v->i = numel->i;
    push(v);
}

// BUILD: torch only uses it to attach {'_metadata': ...} to the state dict of a module; that state is ignored.
void Machine::build() {
    Value* state = pop();
    Value* obj = top();
    if (obj->kind != Kind::Dict) fail(std::string("BUILD on a ") + kind_name(obj->kind));
    if (state->kind != Kind::Dict && state->kind != Kind::None)
        fail(std::string("BUILD with a ") + kind_name(state->kind) + " state");
}

void Machine::set_items(Value* dict, const std::vector<Value*>& kv) {
    if (dict->kind != Kind::Dict) fail(std::string("SETITEM on a ") + kind_name(dict->kind));
    if (kv.size() % 2) fail("SETITEMS with an odd number of values");
    for (Value* v : kv) add_item(dict, v);
}

std::vector<PickleTensor> Machine::result(Value* top) {
    if (top->kind != Kind::Dict) fail(std::string("the pickled object is a ") + kind_name(top->kind) + ", not a dict");
    std::vector<PickleTensor> out;
    out.reserve(top->items.size() / 2);
    for (size_t k = 0; k < top->items.size(); k += 2) {
        Value* key = top->items[k];
        Value* val = top->items[k + 1];
        if (key->kind != Kind::Str)
            fail("state-dict key " + std::to_string(k / 2) + " is a " + kind_name(key->kind) + ", not a string");
        if (val->kind != Kind::Tensor) {
            fail("state-dict value '" + key->s + "' is a " + kind_name(val->kind) +
                 ", not a tensor (a checkpoint holds tensors only)");
        }
        PickleTensor t = tensors_[static_cast<size_t>(val->i)];
        t.key = key->s;
        out.push_back(std::move(t));
    }
    return out;
}

std::vector<PickleTensor> Machine::run() {
    while (pos_ < size_) {
        op_pos_ = pos_;
        uint8_t op = data_[pos_++];
        switch (op) {
            case kProto: {
                uint8_t v = u8();
                if (v < 2 || v > 5) fail("pickle protocol " + std::to_string(v) + " is not supported (2 to 5)");
                break;
            }
            case kFrame:
                le(8);
                break;  // a framing hint only; the opcodes inside are read as usual
            case kStop: {
                Value* v = pop();
                return result(v);
            }
            case kMark:
                if (marks_.size() >= PickleLimits::kMaxDepth)
                    fail("MARKs nested deeper than " + std::to_string(PickleLimits::kMaxDepth));
                marks_.push_back(stack_.size());
                break;
            case kPop:
                pop();
                break;
            case kPopMark:
                pop_mark();
                break;
            case kDup:
                push(top());
                break;

            case kNone:
                push(make(Kind::None));
                break;
            case kNewTrue:
            case kNewFalse: {
                Value* v = make(Kind::Bool);
                v->i = op == kNewTrue;
                push(v);
                break;
            }
            case kBinInt1:
                push(make_int(static_cast<int64_t>(le(1))));
                break;
            case kBinInt2:
                push(make_int(static_cast<int64_t>(le(2))));
                break;
            case kBinInt:
                push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(4)))));
                break;
            case kLong1: {
                size_t n = u8();
                push(make_int(signed_le(n)));
                break;
            }
            case kLong4: {
                int64_t n = static_cast<int32_t>(static_cast<uint32_t>(le(4)));
                if (n < 0) fail("LONG4 with a negative length");
                push(make_int(signed_le(static_cast<size_t>(n))));
                break;
            }
            case kBinFloat: {
                const uint8_t* p = take(8);
                uint64_t bits = 0;
                for (int k = 0; k < 8; k++) bits = (bits << 8) | p[k];  // big-endian
                Value* v = make(Kind::Float);
                std::memcpy(&v->f, &bits, 8);
                push(v);
                break;
            }

            case kShortBinUnicode:
                push(make_str(Kind::Str, bytes(le(1))));
                break;
            case kBinUnicode:
                push(make_str(Kind::Str, bytes(le(4))));
                break;
            case kBinUnicode8:
                push(make_str(Kind::Str, bytes(le(8))));
                break;
            case kShortBinBytes:
                push(make_str(Kind::Bytes, bytes(le(1))));
                break;
            case kBinBytes:
                push(make_str(Kind::Bytes, bytes(le(4))));
                break;
            case kBinBytes8:
                push(make_str(Kind::Bytes, bytes(le(8))));
                break;

            case kEmptyTuple:
                push(make_tuple({}));
                break;
            case kTuple1: {
                Value* a = pop();
                push(make_tuple({a}));
                break;
            }
            case kTuple2: {
                Value* b = pop();
                Value* a = pop();
                push(make_tuple({a, b}));
                break;
            }
            case kTuple3: {
                Value* c = pop();
                Value* b = pop();
                Value* a = pop();
                push(make_tuple({a, b, c}));
                break;
            }
            case kTuple:
                push(make_tuple(pop_mark()));
                break;
            case kEmptyList:
                push(make(Kind::List));
                break;
            case kAppend: {
                Value* v = pop();
                Value* list = top();
                if (list->kind != Kind::List) fail(std::string("APPEND to a ") + kind_name(list->kind));
                add_item(list, v);
                break;
            }
            case kAppends: {
                std::vector<Value*> items = pop_mark();
                Value* list = top();
                if (list->kind != Kind::List) fail(std::string("APPENDS to a ") + kind_name(list->kind));
                for (Value* v : items) add_item(list, v);
                break;
            }
            case kEmptyDict:
                push(make(Kind::Dict));
                break;
            case kSetItem: {
                Value* v = pop();
                Value* k = pop();
                set_items(top(), {k, v});
                break;
            }
            case kSetItems: {
                std::vector<Value*> kv = pop_mark();
                set_items(top(), kv);
                break;
            }

            case kBinPut:
                memo_put(le(1));
                break;
            case kLongBinPut:
                memo_put(le(4));
                break;
            case kMemoize:
                memo_put(memo_.size());
                break;
            case kBinGet:
                memo_get(le(1));
                break;
            case kLongBinGet:
                memo_get(le(4));
                break;

            case kGlobal: {
                std::string module = line();
                std::string name = line();
                global(module, name);
                break;
            }
            case kStackGlobal: {
                Value* name = expect(pop(), Kind::Str, "STACK_GLOBAL name");
                Value* module = expect(pop(), Kind::Str, "STACK_GLOBAL module");
                global(module->s, name->s);
                break;
            }
            case kReduce:
                reduce();
                break;
            case kBinPersId:
                persistent_load();
                break;
            case kBuild:
                build();
                break;

            default: {
                char hex[8];
                std::snprintf(hex, sizeof hex, "0x%02x", op);
                fail(std::string("unknown or unsupported pickle opcode ") + hex);
            }
        }
    }
    op_pos_ = pos_;
    fail("pickle ends without STOP (truncated data.pkl)");
}

}  // namespace

std::vector<PickleTensor> parse_torch_pickle(const uint8_t* data, size_t size, const std::string& where) {
    return Machine(data, size, where).run();
}

}  // namespace rwkv
