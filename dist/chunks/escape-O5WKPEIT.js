import{createRequire as __pipelineCreateRequire}from'node:module';const require=__pipelineCreateRequire(import.meta.url);
import{a,b,c,d,e,f,g}from"./chunk-PLLHCMWR.js";import"./chunk-UZMZCFOP.js";export{e as codeSpan,f as escapeHtml,d as escapeMarkdown,g as escapeMermaidLabel,a as escapeSlack,b as slackLink,c as truncate};
