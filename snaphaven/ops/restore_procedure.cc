#include "snaphaven/ops/restore_procedure.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "snaphaven/storage/file_system.h"
#include "snaphaven/ops/restore.h"

namespace snaphaven {
namespace {

// Package install defaults (cassandra.yaml: data_file_directories,
// commitlog_directory, saved_caches_directory, hints_directory).
constexpr char kData[] = "/var/lib/cassandra/data";
constexpr char kHome[] = "/var/lib/cassandra";

using Lines = std::vector<std::string>;

void Add(Lines& out, std::initializer_list<std::string> lines) {
  out.insert(out.end(), lines.begin(), lines.end());
}

std::string Keyspace(const std::string& table) { return table.substr(0, table.find('/')); }

bool PointInTime(const ProcedureInput& in) { return !in.staged_segments.empty(); }

// A whole node's copy that holds the system keyspace replaces all the data;
// without it, only the tables restored are cleared (the node's own schema
// and tokens stay).
bool HasSystemKeyspace(const ProcedureInput& in) {
  return std::any_of(in.tables.begin(), in.tables.end(),
                     [](const std::string& t) { return Keyspace(t) == "system"; });
}

void StopStep(const ProcedureInput& in, Lines& out) {
  Add(out, {"# 1. Stop the clients' writes, then the node:", "nodetool drain && sudo systemctl stop cassandra"});
  if (PointInTime(in)) {
    Add(out, {"#    For a true point in time, restore every replica of these keyspaces the same way",
              "#    (all stopped first): a replica left running pushes newer writes back through",
              "#    hints and repair. Restoring only this node: run nodetool repair afterwards."});
  }
}

void ClearStep(const ProcedureInput& in, Lines& out) {
  Add(out, {absl::StrCat("# 2. Clear what the node must not start with (the paths are the package",
                         " defaults; use your cassandra.yaml's):")});
  if (in.whole_node && HasSystemKeyspace(in)) {
    out.push_back(absl::StrCat("sudo rm -rf ", kData, "/*"));
  } else {
    for (const std::string& table : in.tables) {
      const std::string name = table.substr(table.find('/') + 1);
      const std::string base = name.substr(0, name.rfind('-'));
      out.push_back(absl::StrCat("sudo rm -rf ", kData, "/", Keyspace(table), "/", ShellQuote(base),
                                 "-*  # every directory of the table: ", table));
    }
  }
  out.push_back(absl::StrCat("sudo rm -rf ", kHome, "/commitlog/* ", kHome, "/saved_caches/* ",
                             kHome, "/hints/*"));
  if (PointInTime(in) && !(in.whole_node && HasSystemKeyspace(in))) {
    Add(out, {"#    Tables not restored keep their data: the replay only adds to them what they",
              "#    lack up to the restore point."});
  }
}

void PlaceStep(const ProcedureInput& in, Lines& out) {
  Add(out, {"# 3. Put the staged sstables in place, in the same table directories (<table>-<id>):"});
  std::vector<std::string> keyspaces;
  for (const std::string& table : in.tables) keyspaces.push_back(Keyspace(table));
  keyspaces.erase(std::unique(keyspaces.begin(), keyspaces.end()), keyspaces.end());
  for (const std::string& keyspace : keyspaces) {
    out.push_back(absl::StrCat("sudo mkdir -p ", kData, "/", ShellQuote(keyspace), " && sudo cp -a ",
                               ShellQuote(JoinPath(in.restore_root, keyspace)), "/. ", kData,
                               "/", ShellQuote(keyspace), "/"));
  }
  out.push_back(absl::StrCat("sudo chown -R cassandra:cassandra ", kData));
}

void TableIdNotes(Lines& out) {
  Add(out, {"# Table ids: each table directory is named <table>-<id>. Cassandra loads sstables only",
            "#   from the directory of the table's current id, and drops commitlog mutations for",
            "#   any other id. If a table was dropped and created again (a new id), create it with",
            "#   its old id before starting, from the snapshot's schema.cql (CREATE TABLE ... WITH",
            "#   ID = <old id>, Cassandra 3.0+); without a point in time you may instead move the",
            "#   sstables into the new directory: mv <staged table dir>/* <data>/<ks>/<table>-<new id>/",
            "#   then nodetool refresh <ks> <table> (or nodetool import)."});
}

void TokenNotes(const ProcedureInput& in, Lines& out) {
  const bool has_local = std::find(in.tables.begin(), in.tables.end(), kSystemLocalDir) != in.tables.end();
  if (has_local) {
    Add(out, {absl::StrCat("# Tokens and host id: system.local is restored (", kSystemLocalDir, "),"),
              "#   so the node comes back with its own tokens and host id. cassandra.yaml must keep",
              "#   the same cluster_name and num_tokens. Schema: system_schema (system before 3.0)",
              "#   is restored with it, so the tables keep their ids."});
    return;
  }
  Add(out, {"# Tokens: system.local is NOT in this copy (copy every keyspace, system included).",
            "#   A node's tokens cannot be learnt from its sstables. Before the first start set, in",
            "#   cassandra.yaml, initial_token: <the old node's tokens, comma-separated> and",
            "#   auto_bootstrap: false. Take the tokens from a running node: nodetool ring | grep",
            "#   <old address> (or nodetool info -T on the old node if it still runs)."});
  out.push_back(in.recorded_host.empty()
                    ? "#   snaphaven records no tokens (.snaphaven/node holds no host here)."
                    : absl::StrCat("#   This destination belonged to host ", in.recorded_host,
                                   " (.snaphaven/node); snaphaven records no tokens."));
  Add(out, {"#   Without system.local the node has a new host id: at the old address it fails to",
            "#   start while the cluster knows the old one. Schema: the tables come from the other",
            "#   nodes' schema, which must hold them with the ids of the staged directories."});
}

void PropertiesStep(const ProcedureInput& in, Lines& out) {
  Add(out, {"# 4. In commitlog_archiving.properties (/etc/cassandra/, or $CASSANDRA_HOME/conf/), set",
            "#    (the cassandra user must be able to read the staged segments):",
            absl::StrCat("restore_directories=", in.segments_dir),
            "restore_command=/bin/cp -f %from %to",
            absl::StrCat("restore_point_in_time=", in.restore_point_in_time)});
  if (in.segment_version >= 7) {
    Add(out, {"#    (GMT. Cassandra 4.0.14, 4.1.7, 5.0.1 and later read the microseconds; earlier",
              "#    4.x and 5.0.0 read whole seconds and ignore the rest.)"});
  } else {
    Add(out, {absl::StrCat("#    (GMT, whole seconds: Cassandra before 4.0 (these segments are "
                           "commitlog version ", in.segment_version, ")"),
              "#    reads no fraction, so the point is cut down to its second.)"});
  }
}

void StartStep(const ProcedureInput& in, Lines& out) {
  const int n = static_cast<int>(in.staged_segments.size());
  Add(out, {"# 5. Start the node: sudo systemctl start cassandra. Its system.log must show",
            absl::StrCat("#      Replaying ... (the ", n, " staged segment(s), e.g. ", in.staged_segments.front(), ")"),
            "#      Log replay complete, <N> replayed mutations",
            "#    before \"Starting listening for CQL clients\". A startup error naming a segment, or",
            "#    \"Unable to parse restore target time\", means nothing was replayed: fix it, clear",
            "#    commitlog/ again and restart.",
            "# 6. Once it is up, remove the restore_directories, restore_command and",
            "#    restore_point_in_time lines (keep archive_command): left there, every restart",
            "#    replays these segments again and drops every write newer than the restore point."});
}

}  // namespace

std::vector<std::string> RestoreProcedure(const ProcedureInput& in) {
  Lines out;
  out.push_back(absl::StrCat("# ", in.whole_node ? "Whole-node restore" : "Restore", " of snapshot '",
                             in.tag, "'", PointInTime(in) ? " to a point in time" : "",
                             ", staged in ", in.restore_root, ":"));
  StopStep(in, out);
  ClearStep(in, out);
  PlaceStep(in, out);
  if (in.whole_node) TokenNotes(in, out);
  TableIdNotes(out);
  if (PointInTime(in)) {
    PropertiesStep(in, out);
    StartStep(in, out);
  } else {
    out.push_back("# 4. Start the node: sudo systemctl start cassandra");
  }
  return out;
}

}  // namespace snaphaven
