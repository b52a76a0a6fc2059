// Checkpoints: the safetensors reader (its JSON header, dtypes, offsets) and
// the metadata a checkpoint carries (vocabulary, class names).
#include "Harness.h"
#include "runtime/Checkpoint.h"

using namespace kiln;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt::Expected<rt::SafetensorsFile> file =
      rt::readSafetensors(fuzz::writeInput(data, size, "in.safetensors"));
  if (!file)
    return 0;
  rt::CheckpointInfo info;
  if (const std::string *vocab = file->findMetadata("kiln.vocab"))
    info.vocab = *vocab;
  if (const std::string *classes = file->findMetadata("kiln.classes"))
    info.classes = *classes;
  (void)rt::checkpointVocabulary("fuzz", info);
  (void)rt::checkpointClasses("fuzz", info);
  return 0;
}
