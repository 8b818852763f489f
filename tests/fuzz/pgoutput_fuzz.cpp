#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "connectors/postgres/pgoutput_decoder.h"
#include "connectors/postgres/replication_messages.h"

namespace {

namespace pg = tributary::postgres;

// One struct for the whole run, as the source keeps one, so that state left by earlier
// inputs is exercised too.
pg::PgoutputMessage reused_message;

// Decoded strings must be views into the input, never past it.
void CheckWithin(std::string_view input, std::string_view view) {
  if (view.empty()) return;
  auto begin = reinterpret_cast<uintptr_t>(input.data());
  auto first = reinterpret_cast<uintptr_t>(view.data());
  if (first < begin || first + view.size() > begin + input.size()) __builtin_trap();
}

void CheckTuple(std::string_view input, const std::vector<pg::TupleColumn>& tuple) {
  for (const pg::TupleColumn& column : tuple) CheckWithin(input, column.data);
}

// Returns the decoded message's type, or nullptr when the bytes were rejected.
const pg::PgoutputType* DecodeAndCheck(std::string_view input, bool in_stream) {
  if (!pg::DecodePgoutput(input, reused_message, in_stream).ok()) return nullptr;
  const pg::PgoutputMessage& m = reused_message;
  switch (m.type) {
    case pg::PgoutputType::kRelation:
      CheckWithin(input, m.relation.schema);
      CheckWithin(input, m.relation.name);
      for (const pg::RelationColumn& column : m.relation.columns) CheckWithin(input, column.name);
      break;
    case pg::PgoutputType::kInsert:
    case pg::PgoutputType::kUpdate:
    case pg::PgoutputType::kDelete:
      CheckTuple(input, m.change.old_tuple);
      CheckTuple(input, m.change.new_tuple);
      break;
    case pg::PgoutputType::kMessage:
      CheckWithin(input, m.message.prefix);
      CheckWithin(input, m.message.content);
      break;
    case pg::PgoutputType::kType:
      CheckWithin(input, m.data_type.schema);
      CheckWithin(input, m.data_type.name);
      break;
    case pg::PgoutputType::kOrigin:
      CheckWithin(input, m.origin.name);
      break;
    default:
      break;
  }
  // Outside a stream block no message carries a stream xid.
  if (!in_stream && m.stream_xid != 0) __builtin_trap();
  return &m.type;
}

// The input as a series of messages, each a big-endian 16-bit length then its bytes, decoded
// as the source reads a stream: between a Stream Start and a Stream Stop, with the xid prefix.
void DecodeSequence(std::string_view bytes) {
  bool in_stream = false;
  while (bytes.size() >= 2) {
    const size_t size = (static_cast<uint8_t>(bytes[0]) << 8) | static_cast<uint8_t>(bytes[1]);
    bytes.remove_prefix(2);
    const std::string_view message = bytes.substr(0, size);
    bytes.remove_prefix(message.size());
    const pg::PgoutputType* type = DecodeAndCheck(message, in_stream);
    if (type == nullptr) continue;
    if (*type == pg::PgoutputType::kStreamStart) in_stream = true;
    if (*type == pg::PgoutputType::kStreamStop) in_stream = false;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view bytes(reinterpret_cast<const char*>(data), size);

  pg::CopyDataMessage copy_data;
  if (pg::DecodeCopyData(bytes, copy_data).ok() && copy_data.type == pg::CopyDataType::kXLogData) {
    CheckWithin(bytes, copy_data.payload);
    DecodeAndCheck(copy_data.payload, /*in_stream=*/false);
  }
  // Bare pgoutput bytes too, in and out of a stream, so that the fuzzer need not find the
  // framing first.
  DecodeAndCheck(bytes, /*in_stream=*/false);
  DecodeAndCheck(bytes, /*in_stream=*/true);
  DecodeSequence(bytes);
  return 0;
}
