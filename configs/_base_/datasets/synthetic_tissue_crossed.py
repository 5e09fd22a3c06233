# Generated tissue whose class frequency and difficulty are crossed, so that
# "rare" and "hard" come apart (the generator's default classes are too easy
# to separate for difficulty to matter at CPU scale). Difficulty d moves a
# class's colour and dot density a fraction d of the way to stroma's. Two
# common classes (one hard, one easy), two rare ones (one hard, one easy), a
# rare medium one, and stroma, the common easy background. 128 px images.
_base_ = ['./synthetic_tissue.py']
img_size = 128
crop_size = (img_size, img_size)
class_specs = [
    dict(name='stroma', freq=0.46, difficulty=0.0, color=(232, 160, 196),
         dots=0.02),
    dict(name='tumor', freq=0.20, difficulty=0.85, color=(150, 82, 170),
         dots=0.15),
    dict(name='fat', freq=0.20, difficulty=0.1, color=(250, 244, 250),
         dots=0.0),
    dict(name='lymphocytes', freq=0.05, difficulty=0.0, color=(80, 48, 140),
         dots=0.40),
    dict(name='necrosis', freq=0.05, difficulty=0.85, color=(170, 110, 120),
         dots=0.10),
    dict(name='mucin', freq=0.04, difficulty=0.5, color=(170, 190, 230),
         dots=0.05),
]
data = dict(img_size=img_size, class_specs=class_specs)
train_dataloader = dict(dataset=data)
val_dataloader = dict(dataset=data)
test_dataloader = dict(dataset=data)
