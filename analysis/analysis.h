// analysis: the analyses of Hu et al. 2021 (LoRA), Sec. 7 and App. H, plus
// spectra and intruder dimensions, in double precision (LAPACKE, CBLAS).
//
//   linalg.h     an_mat, thin QR/SVD, singular vectors, errors (an_error)
//   random.h     seeded Gaussian generator for the random baselines
//   lowrank.h    SVD of ΔW = s·B·A without forming ΔW
//   subspace.h   normalized subspace similarity φ (Eq. 4; Fig. 3, 4, 6, 7, 8)
//   amplify.h    ‖U^T W V‖_F and the amplification factor (Table 7)
//   spectrum.h   effective rank, energy rank, norms of a spectrum
//   intruders.h  intruder dimensions (Shuttleworth et al. 2024)
//   chance.h     chance bands: φ and ‖U^T W V‖_F for random subspaces (exact means, Monte Carlo percentiles)
#ifndef AN_ANALYSIS_H
#define AN_ANALYSIS_H

#include "linalg.h"
#include "random.h"
#include "lowrank.h"
#include "subspace.h"
#include "amplify.h"
#include "spectrum.h"
#include "intruders.h"
#include "chance.h"

#endif
