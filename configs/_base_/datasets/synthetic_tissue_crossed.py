# Generated tissue whose class frequency and difficulty are crossed, so that
# "rare" and "hard" come apart: three pairs of classes, each a common and a
# rare class, confusable within the pair (hard, medium) or not at all (easy),
# and distinct from every other class. 128 px images.
#
#   class        freq  look                    pair    overlap 8x8 / pixel
#   stroma       0.40  pink, few nuclei        easy    0.00 / 0.03
#   lymphocytes  0.06  dark purple, dense      easy    0.00 / 0.11
#   tumor        0.25  purple, nuclei          hard    0.20 / 0.41
#   necrosis     0.05  moved towards tumor     hard    0.20 / 0.41
#   fat          0.20  white, no nuclei        medium  0.08 / 0.23
#   mucin        0.04  moved towards fat       medium  0.08 / 0.23
#
# The overlap of two classes is the error of the best linear classifier of
# 8x8 patches (mean and spread of each colour channel) between them
# (mmimb.datasets.appearance_overlap; 0 separable, 0.5 indistinguishable).
# The rare member's difficulty setting moves its look towards its
# confuser's; it was set by calibrate_difficulty to reach overlaps 0.20
# (hard) and 0.08 (medium); every other pair's 8x8 overlap is 0 (an easy
# class's pixel overlap is its largest with any class). Print the measured
# table with
#   python tools/analysis_tools/synthetic_tissue_difficulty.py \
#       configs/_base_/datasets/synthetic_tissue_crossed.py
_base_ = ['./synthetic_tissue.py']
img_size = 128
crop_size = (img_size, img_size)
class_specs = [
    dict(name='stroma', freq=0.40, difficulty=0.0, color=(232, 160, 196),
         dots=0.02),
    dict(name='tumor', freq=0.25, difficulty=0.0, color=(150, 82, 170),
         dots=0.15),
    dict(name='fat', freq=0.20, difficulty=0.0, color=(250, 244, 250),
         dots=0.0),
    dict(name='lymphocytes', freq=0.06, difficulty=0.0, color=(80, 48, 140),
         dots=0.40),
    dict(name='necrosis', freq=0.05, difficulty=0.867, color=(120, 40, 90),
         dots=0.25, confuser='tumor'),
    dict(name='mucin', freq=0.04, difficulty=0.656, color=(170, 190, 230),
         dots=0.05, confuser='fat'),
]
data = dict(img_size=img_size, class_specs=class_specs)
train_dataloader = dict(dataset=data)
val_dataloader = dict(dataset=data)
test_dataloader = dict(dataset=data)
