// import: a PEFT adapter (io/adapter.h) folded into a model's weights, so that
// eval and generate run base + adapter at no extra cost (Sec. 4.1). The
// opposite direction, the engine's adapter written out for PEFT, is
// train/export.h.
#ifndef LS_TRAIN_IMPORT_H
#define LS_TRAIN_IMPORT_H

#include "engine/model.h"
#include "io/adapter.h"

// W <- W + s·B·A for every site of a loaded PEFT adapter (lora_merge_into, on a
// host copy of each weight). Checks family, layers and shapes against the
// model before changing anything; an encoder's saved head (modules_to_save)
// replaces the model's (model_head_from_adapter). The adapter stays the caller's. Returns 0,
// or -1 with ls_error() set.
int import_adapter(ls_model *m, const lora_adapter *a);

// Loads the PEFT adapter in dir (or in dir/adapter, a run directory), applies
// it with import_adapter and frees it. Returns 0 or -1.
int import_adapter_dir(ls_model *m, const char *dir);

#endif
