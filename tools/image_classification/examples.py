"""Utterances that should route to ``classify_image`` (the router trains on them):
questions about an attached image (what it shows, which animal, plant, food or object, a
custom model's label), in English and Chinese."""

from __future__ import annotations

EXAMPLES_EN: list[str] = [
    "What is in this picture?",
    "What's in this photo?",
    "Identify this.",
    "What is this?",
    "Can you tell me what this image shows?",
    "Classify this image.",
    "What animal is this?",
    "What kind of object is in the photo?",
    "Recognise the thing in this picture.",
    "What do you see in this image?",
    "Label this photo for me.",
    "Which breed of dog is this?",
    "What species is this bird?",
    "Tell me what's shown in the attached image.",
    "Is this a cat or a dog?",
    "What food is this?",
    "Name the object in my photo.",
    "Describe what this picture contains.",
    "Use my custom model to classify this image.",
    "Run the image classifier on this.",
    "What plant is in the picture?",
    "Guess what this is from the photo.",
    "Can you recognize this image?",
    "What's that thing in the picture I uploaded?",
    "Give me the top 3 labels for this image.",
    "What vehicle is shown here?",
    "Which fruit is this?",
]

EXAMPLES_ZH: list[str] = [
    "这是什么？",
    "这张图片里有什么？",
    "识别图片",
    "帮我识别一下这张照片",
    "图片里是什么东西？",
    "这是什么动物？",
    "请对这张图片进行分类",
    "看看这张图是什么",
    "这张照片拍的是什么？",
    "这是什么品种的狗？",
    "这只鸟是什么鸟？",
    "图中的物体叫什么？",
    "帮我看看图里有什么",
    "这是猫还是狗？",
    "这是什么食物？",
    "用我训练的模型识别这张图片",
    "给这张图片打个标签",
    "这是什么植物？",
    "识别一下我上传的图片",
    "图像分类",
    "这张图片显示的是什么内容？",
    "你能认出这是什么吗？",
    "照片里的是什么车？",
    "这是什么水果？",
    "告诉我图片中的主要物体",
    "给出这张图片最可能的三个类别",
]

EXAMPLES: list[str] = EXAMPLES_EN + EXAMPLES_ZH
