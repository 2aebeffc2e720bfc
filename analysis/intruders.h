// intruders: intruder dimensions (Shuttleworth et al. 2024, "LoRA vs Full
// Fine-tuning: An Illusion of Equivalence", arXiv 2410.21228).
//
// Take the top-k singular vectors of the fine-tuned matrix W0 + ΔW. One of
// them is an intruder dimension when it is far from every singular vector of
// the pretrained W0: max_j |cos(u_i, u0_j)| < ε, the max running over all
// min(d, k) singular vectors of W0. Defaults (theirs): k = 10, ε = 0.5, left
// singular vectors. Singular vectors are unit-norm, so cos is the dot product.
#ifndef AN_INTRUDERS_H
#define AN_INTRUDERS_H

#include "linalg.h"

#define AN_INTRUDER_DEFAULT_K 10
#define AN_INTRUDER_DEFAULT_EPS 0.5

// One of the top-k singular vectors of W0 + ΔW.
typedef struct {
    int index;        // 0-based position in W0 + ΔW's spectrum (0 = largest)
    double sigma;     // its singular value
    double max_cos;   // max over W0's singular vectors j of |u_i · u0_j|
    int best_match;   // the 0-based j attaining max_cos
    int is_intruder;  // max_cos < eps
} an_intruder;

typedef struct {
    int k;            // vectors examined
    double eps;       // threshold used
    int count;        // how many of the k are intruders
    an_intruder *items;  // k entries, by index (owned; free with an_intruders_free)
} an_intruders;

// From SVDs the caller computed: W0_svd of the pretrained W0, ft_svd of
// W0 + ΔW (both d x k, all min(d, k) vectors kept, as an_svd_thin does).
// side AN_SIDE_LEFT is the paper's choice; AN_SIDE_RIGHT compares input
// directions. Fills *out. Returns 0, or -1 if the shapes differ, k is not in
// [1, ft_svd->nsv], or eps is not in (0, 1].
int an_intruders_from_svd(const an_svd *W0_svd, const an_svd *ft_svd, an_side side,
                          int k, double eps, an_intruders *out);

// W0 (d x k) and a dense ΔW (d x k, e.g. full fine-tuning), left singular
// vectors. Forms W0 + ΔW and takes both SVDs.
int an_intruder_dimensions(const an_mat *W0, const an_mat *dW, int k, double eps,
                           an_intruders *out);

// W0 (d x k) and a LoRA update ΔW = s·B·A (B d x r, A r x k), left singular
// vectors. W0 + ΔW is full rank in general, so it is formed densely here.
int an_intruder_dimensions_lowrank(const an_mat *W0, const an_mat *B, const an_mat *A,
                                   double s, int k, double eps, an_intruders *out);

void an_intruders_free(an_intruders *out);

#endif
