import { defineMessages } from "@/i18n/define";
import { registerMessages } from "@/i18n/messages";

export const attachments = defineMessages({
  en: {
    "attach.button": "Attach files or images",
    "attach.files": "Files for the next message",
    "attach.remove": "Remove {name}",
    "attach.uploading": "Uploading {name}: {percent}%",
    "attach.uploaded": "{name}, {size}",
    "attach.failed": "{name} was refused: {reason}",
    "attach.full": "At most {n} files per message.",
    "attach.drop": "Drop files to attach them",
    "attach.waiting": "Wait until the files are uploaded.",
    "attach.download": "Download {name}",
    "attach.image": "Image {name}",
    "attach.sent": "Attachments",
    "attach.processing": "Reading {name}…",
    "attach.ready.context": "Read {name}",
    "attach.ready.index": "Indexed {name} for searching",
    "attach.ready.image": "Sent the image {name} to the model",
    "attach.ready.ocr": "The model takes no images: read the text in {name} instead",
    "attach.failedRun": "Could not use {name}: {reason}",
  },
  zh: {
    "attach.button": "添加文件或图片",
    "attach.files": "随下一条消息发送的文件",
    "attach.remove": "移除 {name}",
    "attach.uploading": "正在上传 {name}：{percent}%",
    "attach.uploaded": "{name}，{size}",
    "attach.failed": "{name} 被拒绝：{reason}",
    "attach.full": "每条消息最多 {n} 个文件。",
    "attach.drop": "拖放文件以添加",
    "attach.waiting": "请等待文件上传完成。",
    "attach.download": "下载 {name}",
    "attach.image": "图片 {name}",
    "attach.sent": "附件",
    "attach.processing": "正在读取 {name}…",
    "attach.ready.context": "已读取 {name}",
    "attach.ready.index": "已为 {name} 建立检索索引",
    "attach.ready.image": "已将图片 {name} 发送给模型",
    "attach.ready.ocr": "模型不接受图片：改为读取 {name} 中的文字",
    "attach.failedRun": "无法使用 {name}：{reason}",
  },
});

registerMessages(attachments);
