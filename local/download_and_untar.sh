#!/usr/bin/env bash
# Download one part of AISHELL-1 (OpenSLR resource 33), check it, and unpack it.
#
# The download resumes an interrupted one (<part>.tgz.part), is checked by size and md5, is
# downloaded again from scratch once if the check fails, and is never unpacked unless it
# passes. Unpacking goes to a temporary directory that is renamed when complete; the inner
# per-speaker archives of data_aishell/wav are unpacked too. <data-base>/<part>/.complete
# marks a finished part, which a re-run skips.
set -euo pipefail

remove_archive=false
size=""   # expected size in bytes; default from the table below
md5=""    # expected md5; default from the table below

usage() {
  echo "Usage: $0 [--remove-archive] [--size <bytes>] [--md5 <hex>] <data-base> <url-base> <part>" >&2
  echo "e.g.: $0 /export/corpora https://www.openslr.org/resources/33 data_aishell" >&2
  echo "<part> is data_aishell or resource_aishell (any name with --size and --md5)." >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --remove-archive) remove_archive=true; shift ;;
    --size) size="$2"; shift 2 ;;
    --md5) md5="$2"; shift 2 ;;
    --*) echo "$0: unknown option $1" >&2; usage ;;
    *) break ;;
  esac
done
[ $# -eq 3 ] || usage
data=$1; url=$2; part=$3

case "$part" in
  data_aishell) : "${size:=15582913665}" "${md5:=2f494334227864a8a8fec932999db9d8}" ;;
  resource_aishell) : "${size:=1246920}" "${md5:=957d480a0fcac85fc18e550756f624e5}" ;;
  *) if [ -z "$size" ] || [ -z "$md5" ]; then echo "$0: unknown part '$part' needs --size and --md5" >&2; exit 2; fi ;;
esac

mkdir -p "$data"
if [ -f "$data/$part/.complete" ]; then
  echo "$0: $data/$part is already complete; skipping."
  exit 0
fi

archive="$data/$part.tgz"
fetcher() {  # fetcher <url> <out>: resume <out> if it exists
  if command -v curl >/dev/null; then
    curl --fail --location --silent --show-error --retry 3 --continue-at - --output "$2" "$1"
  elif command -v wget >/dev/null; then
    wget --no-verbose --tries=3 --continue --output-document="$2" "$1"
  else
    echo "$0: neither curl nor wget is installed" >&2; return 1
  fi
}
file_size() { stat -c %s "$1" 2>/dev/null || echo 0; }
archive_ok() {  # archive_ok <file>: size then md5
  local actual
  actual=$(file_size "$1")
  if [ "$actual" != "$size" ]; then
    echo "$0: $1 has $actual bytes, expected $size" >&2; return 1
  fi
  actual=$(md5sum "$1" | cut -d' ' -f1)
  if [ "$actual" != "$md5" ]; then
    echo "$0: $1 has md5 $actual, expected $md5" >&2; return 1
  fi
}

if [ -f "$archive" ] && archive_ok "$archive"; then
  echo "$0: $archive exists and is correct; not downloading."
else
  [ -f "$archive" ] && mv "$archive" "$archive.part"   # a bad or partial archive: try to resume it
  for attempt in 1 2; do
    echo "$0: downloading $url/$part.tgz (attempt $attempt) into $archive.part"
    if [ "$(file_size "$archive.part")" -gt "$size" ]; then rm -f "$archive.part"; fi
    if fetcher "$url/$part.tgz" "$archive.part" && archive_ok "$archive.part"; then
      mv "$archive.part" "$archive"
      break
    fi
    echo "$0: download of $part.tgz failed its check; removing it" >&2
    rm -f "$archive.part"
    if [ $attempt -eq 2 ]; then
      echo "$0: could not download a correct $part.tgz from $url; nothing was unpacked" >&2
      exit 1
    fi
  done
fi

tmp="$data/.$part.untar.$$"
rm -rf "$tmp"; mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
echo "$0: unpacking $archive"
tar -xzf "$archive" -C "$tmp"
[ -d "$tmp/$part" ] || { echo "$0: $archive does not contain a top-level '$part' directory" >&2; exit 1; }
if [ "$part" = data_aishell ] && [ -d "$tmp/$part/wav" ]; then
  # The corpus ships one archive per speaker under wav/.
  n=0
  for inner in "$tmp/$part"/wav/*.tar.gz; do
    [ -e "$inner" ] || continue
    tar -xzf "$inner" -C "$tmp/$part/wav" && rm "$inner"
    n=$((n + 1))
  done
  echo "$0: unpacked $n speaker archives"
fi
rm -rf "$data/$part"
mv "$tmp/$part" "$data/$part"
touch "$data/$part/.complete"
$remove_archive && rm -f "$archive"
echo "$0: successfully downloaded and unpacked $part into $data"
